"""The gated PixelCNN code prior (van den Oord et al. 2016) and its attachment to discrete models.

Causality of the masked convolutions, save→load of the prior beside its checkpoint, sampling
through a model (one level; VQ-VAE-2 top then bottom), the temperature → 0 limit, 1-D index
shapes, and the CLI rows. Tiny configs on the 8×8 digits: seconds.
"""

import json
import math
import warnings

import pytest

import torch

import vaelab
from vaelab.cli import main
from vaelab.models.base import SamplingNotSupported
from vaelab.prior import (CodePrior, GatedPixelCNN, PixelCNNConfig, PriorConfig, PriorSettings,
                          encode_indices, load_prior, save_prior, train_prior)

TINY_PRIOR = PriorConfig(channels=8, layers=3)
FAST = PriorSettings(epochs=1, batch_size=64, progress=False)
DISCRETE = ("vq-vae", "vq-vae-2", "dvae", "gumbel-vae")  # gumbel-vae: 1-D indices (B, N), a 1×N grid


def pixelcnn(shape=(4, 5), k=6, cond=None, layers=4, seed=0) -> GatedPixelCNN:
    torch.manual_seed(seed)
    config = PixelCNNConfig(codebook_size=k, index_shape=shape, channels=8, layers=layers,
                            cond_codebook_size=cond[0] if cond else 0,
                            cond_index_shape=cond[1] if cond else None)
    return GatedPixelCNN(config).eval()


@pytest.fixture(scope="module")
def trained(digits, tmp_path_factory):
    """Tiny discrete models on a digits subset, each with a one-epoch prior saved beside it."""
    data = digits.subset(256, 64)
    out = {}
    for name in DISCRETE:
        torch.manual_seed(0)
        model = vaelab.create(name, tiny=True)
        vaelab.fit(model, data, epochs=1, batch_size=64, progress=False)
        folder = tmp_path_factory.mktemp(name) / "ck"
        vaelab.save_checkpoint(model, folder, dataset="digits", seed=0)
        prior, history = train_prior(model, data, TINY_PRIOR, FAST, out_dir=folder)
        out[name] = (model.eval(), prior, folder, data)
    return out


# --- causality --------------------------------------------------------------------------------

@pytest.mark.parametrize("conditioned", [False, True])
def test_changing_position_p_leaves_logits_at_and_before_p_unchanged(conditioned):
    cond = (3, (2, 3)) if conditioned else None
    net = pixelcnn(cond=cond)
    h, w = net.config.grid
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 6, (3, h, w), generator=g)
    c = torch.randint(0, 3, (3, 2, 3), generator=g) if conditioned else None
    with torch.no_grad():
        base = net(x, c).flatten(2)  # (B, K, h·w)
        for p in range(h * w):
            changed = x.clone().flatten(1)
            changed[:, p] = (changed[:, p] + 1 + torch.randint(0, 5, (3,), generator=g)) % 6
            out = net(changed.reshape(x.shape), c).flatten(2)
            assert torch.allclose(out[:, :, :p + 1], base[:, :, :p + 1], atol=1e-6), f"position {p} leaks"
            if p + 1 < h * w:  # and the next position does react: the test can see a change
                assert not torch.allclose(out[:, :, p + 1], base[:, :, p + 1], atol=1e-6)


def test_gradient_reaches_exactly_the_positions_before_p():
    """No leak from p or later, and no blind spot: with enough layers every earlier position counts."""
    net = pixelcnn(shape=(5, 6), layers=5)
    h, w = net.config.grid
    x = torch.randn(1, net.config.channels, h, w, requires_grad=True)
    for p in range(h * w):
        grad, = torch.autograd.grad(net.forward_embedded(x)[0, :, p // w, p % w].sum(), x)
        reaches = grad.abs().sum((0, 1)).flatten() > 0  # (h·w,)
        assert not reaches[p:].any(), f"logits at {p} depend on positions ≥ {p}"
        assert reaches[:p].all(), f"logits at {p} miss positions {(~reaches[:p]).nonzero().flatten().tolist()}"


def test_one_dimensional_index_shape_is_a_causal_row():
    torch.manual_seed(0)
    prior = CodePrior((PixelCNNConfig(codebook_size=5, index_shape=(12,), channels=8, layers=3),))
    s = prior.sample(4, generator=torch.Generator().manual_seed(1))
    assert s.shape == (4, 12) and s.dtype == torch.long and int(s.max()) < 5
    assert prior.nll(s).shape == (4,)
    net = prior.levels[0].eval()
    with torch.no_grad():
        base = net(s)  # (4, K, 1, 12)
        changed = s.clone()
        changed[:, 6] = (changed[:, 6] + 1) % 5
        out = net(changed)
    assert torch.allclose(out[..., :7], base[..., :7], atol=1e-6)
    assert not torch.allclose(out[..., 7], base[..., 7], atol=1e-6)


# --- save, load, attach -----------------------------------------------------------------------

@pytest.mark.parametrize("name", DISCRETE)
def test_save_load_round_trip_gives_identical_logits(trained, name):
    model, prior, folder, data = trained[name]
    assert {f.name for f in (folder / "prior").iterdir()} == {"config.json", "model.safetensors", "history.json"}
    loaded = vaelab.load_checkpoint(folder)
    assert loaded.info.has_prior and loaded.info.can_sample
    levels = encode_indices(model, data.test_x[:32])  # one (B, h, w) per level, bottom first
    codes = levels[0] if len(levels) == 1 else levels  # as Latent.indices has them
    with torch.no_grad():
        assert torch.equal(loaded.code_prior.nll(codes), prior.nll(codes))
        for i, (a, b) in enumerate(zip(loaded.code_prior.levels, prior.levels)):
            cond = levels[i + 1] if a.conditioned else None
            assert torch.equal(a(levels[i], cond), b(levels[i], cond))
    # the model's own weights file does not carry the prior
    assert "levels.0.embed.weight" not in loaded.state_dict()


def test_checkpoint_without_prior_cannot_sample(tmp_path, trained):
    model, _, _, _ = trained["vq-vae"]
    vaelab.save_checkpoint(model, tmp_path / "bare", dataset="digits")
    bare = vaelab.load_checkpoint(tmp_path / "bare")
    assert not bare.info.has_prior and not bare.info.can_sample
    with pytest.raises(SamplingNotSupported):
        bare.sample(2)


def test_prior_for_other_weights_is_not_attached(tmp_path, trained):
    model, prior, _, _ = trained["vq-vae"]
    vaelab.save_checkpoint(model, tmp_path / "ck", dataset="digits")
    save_prior(prior, tmp_path / "ck")
    with torch.no_grad():
        model.quantizer.codebook.add_(1.0)  # different weights, same shapes
    vaelab.save_checkpoint(model, tmp_path / "ck2", dataset="digits")
    (tmp_path / "ck" / "prior").rename(tmp_path / "ck2" / "prior")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = vaelab.load_checkpoint(tmp_path / "ck2")
    assert not loaded.info.has_prior and any("other weights" in str(w.message) for w in caught)
    with torch.no_grad():
        model.quantizer.codebook.sub_(1.0)


# --- sampling ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", DISCRETE)
def test_samples_decode_to_valid_images(trained, name):
    _, _, folder, _ = trained[name]
    model = vaelab.load_checkpoint(folder)
    images = model.sample(6, generator=torch.Generator().manual_seed(0))
    assert images.shape == (6, *model.config.image_shape)
    assert torch.isfinite(images).all() and images.min() >= 0 and images.max() <= 1
    again = model.sample(6, generator=torch.Generator().manual_seed(0))
    assert torch.equal(images, again)  # seeded sampling is reproducible
    indices = model.sample_indices(6, generator=torch.Generator().manual_seed(0))
    for level, shape in zip(indices if isinstance(indices, tuple) else (indices,), model.info.index_shapes):
        assert level.shape == (6, *shape) and int(level.max()) < model.info.codebook_size


def test_gumbel_models_keep_their_uniform_prior_without_a_learned_one(trained, tmp_path):
    model, _, _, _ = trained["dvae"]
    vaelab.save_checkpoint(model, tmp_path / "bare", dataset="digits")
    bare = vaelab.load_checkpoint(tmp_path / "bare")
    assert bare.info.can_sample and not bare.info.has_prior
    assert bare.sample(3).shape == (3, *bare.config.image_shape)


def test_vqvae2_samples_top_first_then_bottom_conditioned_on_it(trained, monkeypatch):
    model, prior, _, _ = trained["vq-vae-2"]
    model.attach_prior(prior)
    calls = []
    original = GatedPixelCNN.sample

    def spy(self, n, cond=None, *args, **kwargs):
        out = original(self, n, cond, *args, **kwargs)
        calls.append((self, None if cond is None else cond.clone(), out.clone()))
        return out

    monkeypatch.setattr(GatedPixelCNN, "sample", spy)
    bottom, top = model.sample_indices(5, generator=torch.Generator().manual_seed(2))
    assert [c[0] for c in calls] == [prior.levels[1], prior.levels[0]]  # top, then bottom
    assert calls[0][1] is None and torch.equal(calls[0][2], top)
    assert torch.equal(calls[1][1], top) and torch.equal(calls[1][2], bottom)
    assert top.shape == (5, *model.info.index_shapes[1]) and bottom.shape == (5, *model.info.index_shapes[0])
    # the bottom really depends on the top it is given
    with torch.no_grad():
        other_top = (top + 1) % model.info.codebook_size
        assert not torch.equal(prior.levels[0](bottom, top), prior.levels[0](bottom, other_top))


@pytest.mark.parametrize("name", ["vq-vae", "vq-vae-2"])
def test_temperature_zero_is_the_argmax_path(trained, name):
    model, prior, _, _ = trained[name]
    model.attach_prior(prior)
    a = model.sample_indices(4, generator=torch.Generator().manual_seed(0), temperature=0.0)
    b = model.sample_indices(4, generator=torch.Generator().manual_seed(99), temperature=0.0)
    levels_a = a if isinstance(a, tuple) else (a,)
    levels_b = b if isinstance(b, tuple) else (b,)
    for x, y in zip(levels_a, levels_b):
        assert torch.equal(x, y)
    # every drawn index is the argmax of the logits given the path before it (teacher forcing)
    with torch.no_grad():
        for level, net in enumerate(prior.levels):
            cond = levels_a[level + 1] if net.conditioned else None
            logits = net(levels_a[level], cond)  # (B, K, h, w)
            assert torch.equal(logits.argmax(1).reshape(levels_a[level].shape), levels_a[level])
    images = model.sample(4, temperature=0.0)
    assert torch.equal(images, model.sample(4, temperature=0.0))


def test_training_lowers_the_cross_entropy(trained):
    model, _, _, data = trained["vq-vae"]
    torch.manual_seed(0)
    _, history = train_prior(model, data, TINY_PRIOR, PriorSettings(epochs=3, batch_size=32, progress=False))
    vals = [e["val"]["total"] for e in history["epochs"]]
    assert vals[-1] < vals[0] and history["status"] == "completed"


# --- command line -----------------------------------------------------------------------------

def test_cli_train_prior_then_sample(tmp_path, capsys):
    base = tmp_path / "vq"
    assert main(["train", "vq-vae", "--dataset", "digits", "--epochs", "1", "--out", str(base), "--quiet",
                 "--set", "channels=[4,8]", "--set", "latent_dim=4", "--set", "codebook_size=16"]) == 0
    assert main(["sample", str(base), "--n", "4", "--out", str(tmp_path / "no.png")]) == 2
    assert "train-prior" in capsys.readouterr().err
    assert main(["train-prior", "--base", str(base), "--epochs", "1", "--channels", "8", "--layers", "2",
                 "--quiet"]) == 0
    assert "nats per code map" in capsys.readouterr().out
    assert (base / "prior" / "model.safetensors").is_file()
    info = json.loads((base / "config.json").read_text())["info"]
    assert info["can_sample"] and info["has_prior"]  # the recorded info follows the new prior
    assert main(["sample", str(base), "--n", "9", "--out", str(tmp_path / "grid.png"), "--temperature", "0.7"]) == 0
    assert (tmp_path / "grid.png").stat().st_size > 0
    assert load_prior(base).configs[0].layers == 2


def test_cli_train_prior_refuses_continuous_models(tmp_path, capsys):
    base = tmp_path / "ae"
    assert main(["train", "vae", "--epochs", "1", "--out", str(base), "--quiet", "--set", "hidden=[16]"]) == 0
    assert main(["train-prior", "--base", str(base), "--epochs", "1"]) == 2
    assert "no discrete codes" in capsys.readouterr().err


@pytest.mark.parametrize("tau", [0.5, 2.0])
def test_a_temperature_divides_the_logits_checked_against_a_hand_computation(tau):
    """At τ ∉ {0, 1} the draw's frequencies match exp(l/τ) / Σ exp(l/τ), worked out by hand here:
    logits (0, 1, 2) at τ = 0.5 are (0, 2, 4), probabilities (0.0159, 0.1173, 0.8668); at τ = 2 they
    are (0, 0.5, 1), probabilities (0.1863, 0.3072, 0.5065). Multiplying by τ instead, or ignoring it,
    gives frequencies many standard errors away."""
    from vaelab.nn.pixelcnn import draw

    expected = {0.5: [0.015876, 0.117310, 0.866813], 2.0: [0.186324, 0.307196, 0.506480]}[tau]
    n = 200_000
    logits = torch.tensor([[0.0, 1.0, 2.0]]).expand(n, 3)
    got = torch.bincount(draw(logits, tau, torch.Generator().manual_seed(0)), minlength=3).double() / n
    for p, f in zip(expected, got.tolist()):
        assert abs(f - p) < 5 * math.sqrt(p * (1 - p) / n), (tau, got.tolist(), expected)


@pytest.mark.parametrize("name", ["vq-vae", "vq-vae-2"])
def test_the_models_sampler_hands_its_temperature_to_every_draw(trained, name, monkeypatch):
    import vaelab.nn.pixelcnn as pixelcnn

    model, prior, _, _ = trained[name]
    model.attach_prior(prior)
    seen = []
    real = pixelcnn.draw
    monkeypatch.setattr(pixelcnn, "draw", lambda logits, t, g=None: (seen.append(t), real(logits, t, g))[1])
    model.sample_indices(2, generator=torch.Generator().manual_seed(0), temperature=0.37)
    assert seen and set(seen) == {0.37}
