"""The model contract, checked for every registered variant with its tiny test config."""

import pytest
import torch

import vaelab
from vaelab.models.base import Latent, LossOutput, ModelInfo, SamplingNotSupported
from vaelab.registry import list_variants

NAMES = [e.name for e in list_variants()]


def batch(model, n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    shape = model.config.image_shape
    x = torch.rand(n, *shape, generator=g)
    y = torch.randint(0, model.config.num_classes, (n,), generator=g)
    return x, y


def build(name, seed=0):
    torch.manual_seed(seed)
    return vaelab.create(name, tiny=True)


@pytest.mark.parametrize("name", NAMES)
def test_registry_entry_is_complete(name):
    entry = vaelab.get_entry(name)
    assert entry.description and entry.family
    import dataclasses
    assert dataclasses.is_dataclass(entry.config_cls)
    assert entry.config_cls.__dataclass_params__.frozen


@pytest.mark.parametrize("name", NAMES)
def test_shapes_and_info(name):
    model = build(name).eval()
    x, y = batch(model, 8)
    info = model.info
    assert isinstance(info, ModelInfo)
    assert info.latent in ("continuous", "discrete")
    latent = model.encode(x, y)
    assert isinstance(latent, Latent)
    zs = latent.z if isinstance(latent.z, tuple) else (latent.z,)
    assert len(zs) == info.levels
    for z, shape in zip(zs, info.latent_shapes):
        assert tuple(z.shape) == (8, *shape)
    assert latent.flat().shape == (8, info.latent_dim)
    assert model.decode(latent.z, y).shape == x.shape
    assert model.decode_params(latent.z, y).shape == x.shape
    recon = model.reconstruct(x, y)
    assert recon.shape == x.shape and torch.isfinite(recon).all()
    if info.variational and info.latent == "continuous":
        assert latent.mean is not None and latent.logvar is not None
    if info.variational and info.latent == "discrete":  # a categorical posterior: its logits
        assert latent.logits is not None
    if info.latent == "discrete":
        assert info.codebook_size and latent.indices is not None
        z_again = model.latent_from_indices(latent.indices)
        assert torch.allclose(model.decode(z_again, y), model.decode(latent.z, y), atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_sampling_declared_honestly(name):
    model = build(name).eval()
    y = torch.arange(4) % model.config.num_classes
    if model.info.can_sample:
        s = model.sample(4, y if model.info.conditional else None)
        assert s.shape == (4, *model.config.image_shape) and torch.isfinite(s).all()
    else:
        with pytest.raises(SamplingNotSupported):
            model.sample(4)


@pytest.mark.parametrize("name", NAMES)
def test_loss_is_finite_and_gradients_reach_every_parameter(name):
    model = build(name).train()
    x, y = batch(model, 64)
    # run every phase so layer-wise models have each layer's objective checked
    for phase, _ in model.training_phases(1):
        model.set_phase(phase)
        groups = model.optimizer_groups()
        out = model.loss(x, y, step=0)
        assert isinstance(out, LossOutput)
        assert "total" in out.terms and torch.isfinite(out.total)
        for term, value in out.terms.items():
            assert torch.isfinite(torch.as_tensor(value)).all(), term
        for g, params in groups.items():
            assert params, f"optimizer group {g} is empty in phase {phase}"
            grads = torch.autograd.grad(out.objective(g), params, retain_graph=True, allow_unused=True)
            for p, grad in zip(params, grads):
                assert grad is not None and torch.isfinite(grad).all(), \
                    f"{phase}/{g}: a parameter of shape {tuple(p.shape)} gets no gradient"
    # the last phase's groups together cover every parameter meant to learn
    covered = {id(p) for params in model.optimizer_groups().values() for p in params}
    for pname, p in model.parameters_meant_to_learn():
        assert id(p) in covered, f"{pname} is in no optimizer group"


@pytest.mark.parametrize("name", NAMES)
def test_save_load_gives_identical_outputs(name, tmp_path, digits):
    torch.manual_seed(0)
    model = vaelab.create(name, tiny=True)
    vaelab.fit(model, digits.subset(256, 64), epochs=1, batch_size=64, progress=False)
    model.eval()
    x, y = digits.test_x[:16], digits.test_y[:16]
    vaelab.save_checkpoint(model, tmp_path / "ck", dataset="digits", seed=0)
    loaded = vaelab.load_checkpoint(tmp_path / "ck")
    assert type(loaded) is type(model) and loaded.config == model.config
    assert torch.equal(loaded.reconstruct(x, y), model.reconstruct(x, y))
    assert torch.equal(loaded.encode(x, y).flat(), model.encode(x, y).flat())


@pytest.mark.parametrize("name", NAMES)
def test_seeded_training_is_deterministic(name, digits):
    data = digits.subset(256, 64)
    states = []
    for _ in range(2):
        torch.manual_seed(3)
        model = vaelab.create(name, tiny=True)
        vaelab.fit(model, data, epochs=1, batch_size=64, seed=5, progress=False)
        states.append({k: v.clone() for k, v in model.state_dict().items()})
    assert states[0].keys() == states[1].keys()
    for k in states[0]:
        assert torch.equal(states[0][k], states[1][k]), k


def test_a_variant_missing_part_of_the_contract_fails_when_built():
    """The contract's methods are abstract: forgetting one is a TypeError naming it at
    construction, not a NotImplementedError in the middle of training or in the app."""
    from vaelab.models.base import AutoEncoder, BaseConfig, Trainable
    from vaelab.models.dvae import GumbelAutoEncoder

    class NoLoss(AutoEncoder):
        info = property(lambda self: None)

        def encode(self, x, y=None):
            return None

        def decode_params(self, z, y=None):
            return z

    with pytest.raises(TypeError, match="loss"):
        NoLoss(BaseConfig())
    with pytest.raises(TypeError, match="decode_params.*encode.*info.*loss|encode"):
        AutoEncoder(BaseConfig())
    with pytest.raises(TypeError, match="loss"):
        Trainable()
    abstract = GumbelAutoEncoder.__abstractmethods__
    assert {"posterior_logits", "index_shape"} <= abstract
