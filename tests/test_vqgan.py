"""VQ-GAN: gradient separation of its two objectives, the frozen feature network, the GAN start
step (fast; the tiny 8×8 preset, plus 28×28 models built but not trained for the feature term)."""

import pytest
import torch
from safetensors.torch import load_file

import vaelab
from vaelab.models.vqgan import FeatureNetworkError, feature_net_folder

from .conftest import ROOT

from .conftest import assert_objectives_reach_only_their_group


def tiny(**overrides):
    torch.manual_seed(0)
    return vaelab.create("vq-gan", tiny=True, **overrides).train()


def mnist_sized(**overrides):
    """A 28×28 model with the shipped classifier as its feature network (small trunk: fast)."""
    torch.manual_seed(0)
    return vaelab.create("vq-gan", channels=(4, 8), latent_dim=4, codebook_size=16,
                         disc_channels=(4, 8), disc_start=0, **overrides).train()


def test_the_shipped_classifier_is_the_default_feature_network():
    model = mnist_sized()
    assert feature_net_folder(model.config) == ROOT / "checkpoints" / "classifier"
    assert model.config.feature_weight > 0


@pytest.mark.parametrize("ema", [True, False])
@pytest.mark.parametrize("feature_weight", [0.0, 1.0])
def test_objectives_reach_only_their_own_group(ema, feature_weight):
    model = (mnist_sized if feature_weight else tiny)(ema=ema, feature_weight=feature_weight)
    groups = model.optimizer_groups()
    assert list(groups) == ["generator", "discriminator"]  # generator steps first
    gen_ids = {id(p) for p in groups["generator"]}
    disc_ids = {id(p) for p in groups["discriminator"]}
    assert disc_ids == {id(p) for p in model.discriminator.parameters()}
    assert not gen_ids & disc_ids and gen_ids | disc_ids == {id(p) for p in model.parameters()}
    assert (id(model.quantizer.codebook) in gen_ids) == (not ema)  # a learned codebook is the generator's

    x = torch.rand(16, *model.config.image_shape)
    out = model.loss(x, step=0)
    assert torch.equal(out.total, out.objectives["generator"]) and out.terms["adv"] > 0
    assert (out.terms["feature"] > 0) == bool(feature_weight)
    assert_objectives_reach_only_their_group(model, out, groups)


def test_the_adversarial_term_moves_the_generator():
    """The generator's adversarial gradient is not zero (it flows through the frozen D)."""
    model = tiny(feature_weight=0.0)
    x = torch.rand(16, *model.config.image_shape)
    out = model.loss(x, step=0)
    decoder = list(model.decoder.parameters())
    grads = torch.autograd.grad(out.terms["adv"], decoder)
    assert sum(float(g.abs().sum()) for g in grads) > 0


def test_feature_term_is_zero_for_identical_images_and_positive_otherwise():
    model = mnist_sized()
    x = torch.rand(6, 1, 28, 28)
    same = model.feature_distance(x, x.clone())
    assert same.shape == (6,) and torch.equal(same, torch.zeros(6))
    other = x.flip(0)  # other images of the same batch
    assert (model.feature_distance(x, other) > 0).all()
    assert (model.feature_distance(x, (x + 0.05 * torch.randn_like(x)).clamp(0, 1)) > 0).all()
    # its gradient reaches the reconstruction
    x_hat = other.clone().requires_grad_(True)
    model.feature_distance(x, x_hat).sum().backward()
    assert x_hat.grad is not None and x_hat.grad.abs().sum() > 0
    # and the model's loss reports it, weighted
    torch.manual_seed(1)
    out = model.eval().loss(x)
    torch.manual_seed(1)
    again = vaelab.create("vq-gan", **{**model.config.__dict__, "feature_weight": 2.0}).eval()
    again.load_state_dict(model.state_dict())
    assert torch.allclose(again.loss(x).terms["feature"], 2 * out.terms["feature"], rtol=1e-5)


def test_feature_network_is_frozen_and_not_saved(tmp_path):
    model = mnist_sized()
    net = model.feature_network()
    assert all(not p.requires_grad for p in net.parameters()) and not net.training
    own = {id(p) for p in model.parameters()}
    assert not any(id(p) in own for p in net.parameters())
    assert all("feature" not in k and "classifier" not in k for k in model.state_dict())
    model.train()  # the model's mode does not leak into the classifier
    assert not net.training
    # one training step of both groups leaves the classifier's weights as they were
    before = {k: v.clone() for k, v in net.state_dict().items()}
    opt = {g: torch.optim.Adam(ps, lr=1e-2) for g, ps in model.optimizer_groups().items()}
    out = model.loss(torch.rand(8, 1, 28, 28), step=0)
    for i, (g, o) in enumerate(opt.items()):
        o.zero_grad()
        out.objective(g).backward(inputs=model.optimizer_groups()[g], retain_graph=i == 0)
        o.step()
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k
    # the checkpoint holds the model's tensors and nothing of the classifier
    model.variant = "vq-gan"
    vaelab.save_checkpoint(model, tmp_path / "ck")
    saved = load_file(str(tmp_path / "ck" / "model.safetensors"))
    assert set(saved) == set(model.state_dict())
    loaded = vaelab.load_checkpoint(tmp_path / "ck")
    x = torch.rand(4, 1, 28, 28)
    assert torch.equal(loaded.reconstruct(x), model.reconstruct(x))


def test_feature_network_must_exist_and_fit_when_asked_for(tmp_path):
    with pytest.raises(FeatureNetworkError, match=str(tmp_path / "none")):
        vaelab.create("vq-gan", feature_net=str(tmp_path / "none"))
    with pytest.raises(FeatureNetworkError, match="feature_weight=0"):
        vaelab.create("vq-gan", tiny=True, feature_weight=1.0)  # 8×8 images, 28×28 classifier
    tiny().loss(torch.rand(4, 1, 8, 8))  # disabled explicitly: the tiny preset builds and runs
    with pytest.raises(FeatureNetworkError):
        tiny().feature_network()


def test_gan_terms_are_off_before_the_start_step():
    model = tiny(disc_start=10)
    x = torch.rand(16, *model.config.image_shape)
    for step, on in ((0, False), (9, False), (10, True), (11, True)):
        out = model.loss(x, step=step)
        assert bool(out.terms["gan_on"]) == on
        assert (out.terms["adv"] > 0) == on and (out.objectives["discriminator"] > 0) == on
        vq = out.terms["recon"] + out.terms["commitment"] + out.terms["feature"]
        if not on:
            assert torch.equal(out.total, vq)
            grads = torch.autograd.grad(out.objectives["discriminator"],
                                        list(model.discriminator.parameters()), allow_unused=True)
            assert all(g is None or not g.any() for g in grads)
        else:
            assert torch.allclose(out.total, vq + out.terms["adv"])


def test_training_before_the_start_step_leaves_the_discriminator_alone(digits):
    model = tiny(disc_start=10_000)
    before = {k: v.clone() for k, v in model.discriminator.state_dict().items()}
    vaelab.fit(model, digits.subset(128, 32), epochs=1, batch_size=32, progress=False)
    for k, v in model.discriminator.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_reuses_the_vq_vae():
    from vaelab.models.vqvae import VQVAE

    from vaelab.models.grid import GridAutoEncoder
    from vaelab.nn.quantize import VectorQuantizer

    model = tiny()
    assert isinstance(model, VQVAE) and isinstance(model, GridAutoEncoder)
    assert isinstance(model.quantizer, VectorQuantizer)
    assert model.info.latent == "discrete" and model.info.codebook_size == 16
    assert model.info.index_shapes == ((2, 2),) and not model.info.can_sample
    # the VQ-VAE's terms, then the GAN's on top
    terms = model.loss(torch.rand(8, 1, 8, 8)).terms
    assert {"recon", "commitment", "perplexity", "feature", "adv", "disc"} <= set(terms)


def test_inherits_the_vq_vae_code_prior(digits, tmp_path):
    """A PixelCNN prior saved beside a vq-gan checkpoint is attached by the loader, as for vq-vae."""
    from vaelab.prior import PriorConfig, PriorSettings, train_prior

    data = digits.subset(128, 32)
    model = tiny()
    vaelab.fit(model, data, epochs=1, batch_size=64, progress=False)
    vaelab.save_checkpoint(model, tmp_path / "ck", dataset="digits", seed=0)
    train_prior(model, data, PriorConfig(channels=8, layers=3),
                PriorSettings(epochs=1, batch_size=64, progress=False), out_dir=tmp_path / "ck")
    loaded = vaelab.load_checkpoint(tmp_path / "ck")
    assert loaded.info.has_prior and loaded.info.can_sample
    images = loaded.sample(4, generator=torch.Generator().manual_seed(0))
    assert images.shape == (4, 1, 8, 8) and torch.isfinite(images).all()
