"""Exploring models vaelab did not build: the adapters, the images, the embedding's numbers, your
own encoder/decoder in a registered variant, and the ``explore`` command. Every model is tiny and
randomly initialised here (no downloads); each number is recomputed independently."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from typing import NamedTuple

import vaelab
from vaelab import external as ex

from .conftest import ROOT


# --- small models defined here ---------------------------------------------------------------------

class TinyAE(nn.Module):
    """A plain autoencoder with encode/decode, 8×8 grey images, a 3-number code."""

    def __init__(self):
        super().__init__()
        self.enc, self.dec = nn.Linear(64, 3), nn.Linear(3, 64)

    def encode(self, x):
        return self.enc(x.flatten(1))

    def decode(self, z):
        return torch.sigmoid(self.dec(z)).reshape(-1, 1, 8, 8)


class Posterior(NamedTuple):
    mean: torch.Tensor
    logvar: torch.Tensor


class TinyVAE(TinyAE):
    """``encode`` returns a named (mean, logvar): a variational one."""

    def __init__(self):
        super().__init__()
        self.enc = nn.Linear(64, 6)

    def encode(self, x):
        return Posterior(*self.enc(x.flatten(1)).chunk(2, 1))


class BareTuple(TinyVAE):
    """``encode`` returns what ``conventions`` says, as a bare tuple of tensors."""

    def __init__(self, convention: str):
        super().__init__()
        self.convention = convention

    def encode(self, x):
        mean, logvar = super().encode(x)
        std = (0.5 * logvar).exp()
        return {"mean, logvar": (mean, logvar), "mean, std": (mean, std),
                "z, mean, logvar": (mean + std, mean, logvar)}[self.convention]


class Renamed(nn.Module):
    """Other names: needs encode=/decode= to say how."""

    def __init__(self):
        super().__init__()
        self.inner = TinyAE()

    def embed_images(self, x):
        return self.inner.encode(x)

    def draw(self, z):
        return self.inner.decode(z)


DIFFUSERS = dict(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
                 up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16), layers_per_block=1,
                 latent_channels=4, norm_num_groups=4, sample_size=16)


def diffusers_kl():
    diffusers = pytest.importorskip("diffusers", reason="diffusers is not installed (pip install -r requirements-dev.txt)")
    torch.manual_seed(0)
    return diffusers.AutoencoderKL(**DIFFUSERS).eval()


def diffusers_vq():
    diffusers = pytest.importorskip("diffusers", reason="diffusers is not installed (pip install -r requirements-dev.txt)")
    torch.manual_seed(0)
    return diffusers.VQModel(**DIFFUSERS, num_vq_embeddings=16, vq_embed_dim=4).eval()


def pythae_vae():
    models = pytest.importorskip("pythae.models", reason="pythae is not installed (pip install -r requirements-dev.txt)")
    torch.manual_seed(0)
    return models.VAE(models.VAEConfig(input_dim=(1, 28, 28), latent_dim=4)).eval()


def blobs(n=120, size=16, seed=0):
    """Coloured blobs on black, labelled by quadrant: images with structure, and classes."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    c, col = torch.rand(n, 2, generator=g), torch.rand(n, 3, 1, 1, generator=g)
    blob = torch.exp(-((xx - c[:, 0, None, None]) ** 2 + (yy - c[:, 1, None, None]) ** 2) / 0.03)
    return (blob[:, None] * col).clamp(0, 1), (c[:, 0] > 0.5).long() + 2 * (c[:, 1] > 0.5).long()


# --- adapters ------------------------------------------------------------------------------------------

def test_an_own_module_is_adapted_by_its_encode_and_decode():
    net = TinyAE()
    m = ex.adapt(net, image_shape=(1, 8, 8))
    x = torch.rand(5, 1, 8, 8)
    assert m.info.latent == "continuous" and not m.info.variational and not m.info.can_sample
    assert m.info.latent_dim == 3
    lat = m.encode(x)
    assert torch.allclose(lat.z, net.encode(x)) and lat.mean is None
    assert torch.allclose(m.reconstruct(x), net.decode(net.encode(x)))
    with pytest.raises(TypeError, match="explored here, not trained"):
        m.loss(x)


def test_a_mean_and_logvar_pair_makes_it_variational_and_it_samples():
    net = TinyVAE()
    m = ex.adapt(net, image_shape=(1, 8, 8))
    x = torch.rand(4, 1, 8, 8)
    mean, logvar = net.encode(x)
    lat = m.encode(x)
    assert m.info.variational and m.info.can_sample
    assert torch.allclose(lat.mean, mean) and torch.allclose(lat.logvar, logvar)
    assert torch.allclose(m.reconstruct(x), net.decode(mean))  # the posterior mean is decoded
    assert m.sample(3, generator=torch.Generator().manual_seed(0)).shape == (3, 1, 8, 8)


@pytest.mark.parametrize("convention", ["mean, logvar", "mean, std", "z, mean, logvar"])
def test_a_bare_tuple_is_refused_until_posterior_says_what_it_holds(convention):
    net = BareTuple(convention)
    with pytest.raises(ex.ExploreError, match="posterior="):
        ex.adapt(net, image_shape=(1, 8, 8))
    m = ex.adapt(net, image_shape=(1, 8, 8), posterior=convention)
    x = torch.rand(4, 1, 8, 8)
    mean, logvar = TinyVAE.encode(net, x)
    lat = m.encode(x)
    assert torch.allclose(lat.mean, mean) and torch.allclose(lat.logvar, logvar, atol=1e-5)
    with pytest.raises(ex.ExploreError, match="names 2 values but encode returned 3"):
        ex.adapt(BareTuple("z, mean, logvar"), image_shape=(1, 8, 8), posterior="mean, logvar")
    with pytest.raises(ex.ExploreError, match="posterior= names each value"):
        ex.adapt(net, image_shape=(1, 8, 8), posterior="average, spread")


def test_named_results_are_read_by_name_dicts_and_torch_distributions():
    base = TinyVAE()
    x = torch.rand(3, 1, 8, 8)
    mean, logvar = base.encode(x)
    std = (0.5 * logvar).exp()
    D = torch.distributions
    for result in ({"z": mean + std, "mu": mean, "logvar": logvar}, {"loc": mean, "scale": std},
                   D.Normal(mean, std), D.Independent(D.Normal(mean, std), 1), {"mean": mean, "var": std ** 2}):
        class Named(TinyAE):
            def encode(self, x, result=result):
                return result

        m = ex.adapt(Named(), image_shape=(1, 8, 8))
        lat = m.encode(x)
        assert m.info.variational
        assert torch.allclose(lat.mean, mean) and torch.allclose(lat.logvar, logvar, atol=1e-5), type(result)
    class Bernoulli(TinyAE):
        def encode(self, x):
            return D.Bernoulli(logits=mean)
    with pytest.raises(ex.ExploreError, match="diagonal Normal"):
        ex.adapt(Bernoulli(), image_shape=(1, 8, 8))


def test_the_module_given_keeps_its_mode_and_its_gradients():
    net = TinyVAE().train()
    net.enc.eval()  # a mixed state, given back as it was
    seen = []

    class Watch(nn.Module):
        def forward(self, x):
            seen.append(self.training)
            return x

    net.watch = Watch()
    net.encode = lambda x, f=net.encode: f(net.watch(x))
    e = ex.embed(net, torch.rand(30, 1, 8, 8), progress=False)
    assert seen and not any(seen)  # every call ran in eval mode
    assert net.training and not net.enc.training and net.dec.training and net.watch.training
    assert all(p.requires_grad for p in net.parameters())
    from vaelab.app.explored import register
    register(e, "mode-check")
    assert net.training and all(p.requires_grad for p in net.parameters())


def test_other_method_names_go_through_encode_and_decode_arguments():
    net = Renamed()
    with pytest.raises(ex.ExploreError, match="encode=... and decode="):
        ex.adapt(net, image_shape=(1, 8, 8))
    m = ex.adapt(net, image_shape=(1, 8, 8), encode="embed_images", decode=net.draw)
    x = torch.rand(2, 1, 8, 8)
    assert torch.allclose(m.reconstruct(x), net.draw(net.embed_images(x)))


def test_diffusers_autoencoder_kl_gives_its_posterior_over_the_flattened_spatial_latent():
    vae = diffusers_kl()
    m = ex.adapt(vae)
    assert tuple(m.config.image_shape) == (3, 16, 16) and m.value_range == (-1.0, 1.0)
    x = torch.rand(3, 3, 16, 16)
    with torch.no_grad():
        dist = vae.encode(2 * x - 1).latent_dist  # diffusers works in −1…1
        expected = ((vae.decode(dist.mean).sample + 1) / 2).clamp(0, 1)
    lat = m.encode(x)
    assert m.latent_shape == (4, 8, 8) and m.info.latent_dim == 256 and m.info.variational
    assert torch.allclose(lat.mean, dist.mean.flatten(1)) and torch.allclose(lat.logvar, dist.logvar.flatten(1))
    assert torch.allclose(m.reconstruct(x), expected, atol=1e-6)
    assert torch.allclose(m.decode(lat.z), expected, atol=1e-6)  # a flat z is put back in its (4, 8, 8) shape


def test_diffusers_vqmodel_gives_the_nearest_codes_and_decodes_edited_maps():
    vq = diffusers_vq()
    m = ex.adapt(vq)
    x = torch.rand(2, 3, 16, 16)
    lat = m.encode(x)
    assert m.info.latent == "discrete" and m.info.codebook_size == 16 and m.info.index_shapes == ((8, 8),)
    with torch.no_grad():
        h = vq.encode(2 * x - 1).latents
    e = vq.quantize.embedding.weight
    d = ((h.permute(0, 2, 3, 1)[..., None, :] - e) ** 2).sum(-1)  # (B, 8, 8, K)
    assert torch.equal(lat.indices, d.argmin(-1))  # the nearest code, recomputed here
    edited = lat.indices.clone()
    edited[0, 0, 0] = (edited[0, 0, 0] + 1) % 16
    z = m.latent_from_indices(edited)
    assert torch.allclose(z[0, :, 0, 0], e[edited[0, 0, 0]])
    assert torch.allclose(m.decode(m.latent_from_indices(lat.indices)), m.reconstruct(x), atol=1e-6)
    assert torch.equal(m.codebooks()[0], e.detach())


def test_pythae_models_give_embedding_and_log_covariance():
    model = pythae_vae()
    m = ex.adapt(model)
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        out = model.encoder(x)
        rec = model.decoder(out.embedding)["reconstruction"]
    lat = m.encode(x)
    assert m.info.variational and m.info.latent_dim == 4
    assert torch.allclose(lat.mean, out.embedding) and torch.allclose(lat.logvar, out.log_covariance)
    assert torch.allclose(m.reconstruct(x), rec.clamp(0, 1))


# --- images ---------------------------------------------------------------------------------------------

def _write(path, rgb):
    Image.fromarray(rgb).save(path)


def test_an_rgb_image_folder_is_resized_centre_cropped_and_labelled_by_sub_folder(tmp_path):
    rng = np.random.default_rng(0)
    for cls, size in (("cats", (40, 30)), ("dogs", (24, 24))):
        (tmp_path / cls).mkdir()
        for k in range(3):
            _write(tmp_path / cls / f"{k}.png", rng.integers(0, 256, (*size, 3), dtype=np.uint8))
    (tmp_path / "dogs" / "broken.png").write_bytes(b"not a png")
    im = ex.images(tmp_path, (3, 16, 16), progress=False)
    assert im.x.shape == (6, 3, 16, 16) and im.classes == ["cats", "dogs"]
    assert im.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert "skipped, unreadable: dogs/broken.png (not an image PIL can read)" in im.source
    assert 0 <= float(im.x.min()) and float(im.x.max()) <= 1
    # the resize and crop, done here with PIL: shorter side to 16, then the centre 16×16
    src = Image.open(tmp_path / "cats" / "0.png")  # 30 wide, 40 high
    want = np.asarray(src.resize((16, round(40 * 16 / 30)), Image.BILINEAR), np.float32) / 255
    top = (want.shape[0] - 16) // 2
    got = im.x[0].permute(1, 2, 0).numpy()
    assert np.abs(got - want[top:top + 16]).mean() < 0.03  # antialiased bilinear both ways
    # embedded straight from the folder by a colour model
    e = ex.embed(diffusers_kl(), tmp_path, progress=False)
    assert e.arrays["coords_model"].shape == (6, 2) and e.arrays["test_labels"].tolist() == [0, 0, 0, 1, 1, 1]
    # grey for a grey model, an even spread under a cap
    grey = ex.images(tmp_path, (1, 8, 8), max_images=3, progress=False)  # cats/0, dogs/0 and the broken file
    assert grey.x.shape == (2, 1, 8, 8) and grey.labels.tolist() == [0, 1] and "dogs/broken.png" in grey.source


def test_a_flat_folder_has_no_labels_and_bad_input_is_refused_with_a_reason(tmp_path):
    for k in range(2):
        _write(tmp_path / f"{k}.jpg", np.full((20, 20, 3), 40 * k, np.uint8))
    im = ex.images(tmp_path, (3, 8, 8), progress=False)
    assert im.classes == ["all"] and im.labels.tolist() == [0, 0]
    empty = tmp_path / "empty"
    empty.mkdir()
    for data, message in ((empty, "holds no images"), (tmp_path / "nope", "is not a folder"),
                          (torch.full((2, 1, 8, 8), float("nan")), "NaN"), (torch.full((2, 1, 8, 8), 7.0), "pixel values"),
                          (torch.rand(2, 5), "images come as"), (42, "cannot read images")):
        with pytest.raises(ex.ExploreError, match=message):
            ex.images(data, (1, 8, 8), progress=False)
    with pytest.raises(ex.ExploreError, match="channels"):
        ex.images(torch.rand(2, 4, 8, 8), (3, 8, 8), progress=False)


def test_tensors_in_other_layouts_and_a_torchvision_style_dataset():
    hwc = torch.randint(0, 256, (3, 8, 8, 3), dtype=torch.uint8)
    im = ex.images(hwc, (3, 8, 8), progress=False)
    assert torch.allclose(im.x, hwc.permute(0, 3, 1, 2).float() / 255)
    signed = ex.images(torch.rand(2, 1, 8, 8) * 2 - 1, (1, 8, 8), progress=False)  # −1…1 is read as such
    assert 0 <= float(signed.x.min())

    class Pairs:
        classes = ["a", "b"]

        def __len__(self):
            return 4

        def __getitem__(self, i):
            return Image.fromarray(np.full((10, 10), 60 * i, np.uint8)), i % 2

    im = ex.images(Pairs(), (1, 8, 8), progress=False)
    assert im.x.shape == (4, 1, 8, 8) and im.labels.tolist() == [0, 1, 0, 1] and im.classes == ["a", "b"]
    assert abs(float(im.x[3].mean()) - 180 / 255) < 1e-3


# --- the embedding's numbers ------------------------------------------------------------------------------

def test_the_embedding_numbers_are_recomputed_independently():
    from sklearn.decomposition import PCA
    from sklearn.neighbors import KNeighborsClassifier

    torch.manual_seed(1)
    net = TinyVAE()
    x = torch.rand(200, 1, 8, 8)
    y = (x.mean((1, 2, 3)) > 0.5).long()
    e = ex.embed(net, x, labels=y, image_shape=(1, 8, 8), progress=False)
    held = np.arange(200) % 5 == 0
    mean, logvar = (t.detach() for t in net.encode(x))
    # reconstruction error on the held-out fifth, the model's and PCA's (fitted on the rest) at 3 numbers
    rec = net.decode(mean).detach()
    assert e.metrics["reconstruction"]["mse"] == pytest.approx(float(((rec[held] - x[held]) ** 2).mean()), rel=1e-5)
    pixels = x.flatten(1).numpy()
    pca = PCA(3).fit(pixels[~held])
    pca_rec = np.clip(pca.inverse_transform(pca.transform(pixels[held])), 0, 1)
    assert e.metrics["reconstruction"]["pca_mse"] == pytest.approx(float(((pca_rec - pixels[held]) ** 2).mean()), rel=1e-4)
    assert e.metrics["reconstruction"]["pca_dims"] == 3
    # k-NN accuracy of the held-out fifth among the rest, in the full latent
    knn = KNeighborsClassifier(5).fit(mean.numpy()[~held], y.numpy()[~held])
    assert e.metrics["embedding"]["knn_latent_full"] == pytest.approx(knn.score(mean.numpy()[held], y.numpy()[held]))
    # the KL per dimension, its order, the map as the latent's PCA
    kl = (0.5 * (mean.double() ** 2 + logvar.double().exp() - 1 - logvar.double())).mean(0).numpy()
    assert np.allclose(e.metrics["posterior"]["kl_per_dim"], kl)
    assert e.metrics["posterior"]["dims_by_kl"] == list(np.argsort(-kl))
    lat_pca = PCA(2).fit(mean.numpy())
    c = e.arrays["coords_model"]
    ref = lat_pca.transform(mean.numpy())
    assert all(abs(np.corrcoef(c[:, k], ref[:, k])[0, 1]) > 0.999 for k in range(2))  # same axes up to sign
    assert e.arrays["test_labels"].tolist() == y.tolist() and e.arrays["latent_test"].shape == (200, 3)


def test_a_discrete_model_counts_its_codes_and_a_spatial_latent_says_how_it_is_mapped():
    x, y = blobs()
    e = ex.embed(diffusers_vq(), x, labels=y, progress=False)
    idx = torch.as_tensor(e.arrays["indices_level0"]).long()
    counts = torch.bincount(idx.reshape(-1), minlength=16)
    assert e.arrays["usage_level0"].tolist() == counts.tolist()
    assert e.metrics["codebook"]["used_codes"] == int((counts > 0).sum())
    assert e.metrics["reconstruction"]["pca_dims_wanted"] == 64  # one PCA component per code position
    flat = ex.embed(diffusers_kl(), x, labels=y, progress=False)
    pooled = ex.embed(diffusers_kl(), x, labels=y, latent_map="pool", progress=False)
    assert "flattened latent (4×8×8 = 256 numbers)" in flat.metrics["embedding"]["model_projection"]
    assert "averaged over its 8×8 positions (4 numbers)" in pooled.metrics["embedding"]["model_projection"]
    with pytest.raises(ex.ExploreError, match="flatten"):
        ex.embed(diffusers_kl(), x, latent_map="sideways", progress=False)


def test_a_model_that_gives_nan_latents_is_refused():
    class Broken(TinyAE):
        def encode(self, x):
            return super().encode(x) * float("nan")

    with pytest.raises(ex.ExploreError, match="NaN"):
        ex.embed(Broken(), torch.rand(10, 1, 8, 8), image_shape=(1, 8, 8), progress=False)


# --- your own encoder and decoder in a registered variant ---------------------------------------------

class MyEncoder(nn.Module):
    def __init__(self, d=3):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 2 * d))

    def forward(self, x):
        return self.net(x)


class MyDecoder(nn.Module):
    def __init__(self, d=3):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d, 32), nn.ReLU(), nn.Linear(32, 64), nn.Unflatten(1, (1, 8, 8)))

    def forward(self, z):
        return self.net(z)


def test_a_vae_with_its_own_encoder_and_decoder_trains_saves_loads_and_explores(digits, tmp_path):
    with pytest.raises(ValueError, match=r"needs \(2, 6\)"):
        vaelab.create("vae", image_shape=digits.image_shape, latent_dim=3, encoder=MyEncoder(2))
    torch.manual_seed(0)
    model = vaelab.create("vae", image_shape=digits.image_shape, latent_dim=3, encoder=MyEncoder(), decoder=MyDecoder())
    assert any(n.startswith("encoder.net.net") for n, _ in model.named_parameters())
    history = vaelab.fit(model, digits.subset(400, 100), epochs=2, out_dir=tmp_path / "ck", batch_size=64)
    assert len(history["epochs"]) == 2
    from vaelab.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match="pass modules"):
        vaelab.load_checkpoint(tmp_path / "ck")
    loaded = vaelab.load_checkpoint(tmp_path / "ck", modules={"encoder": MyEncoder(), "decoder": MyDecoder()})
    x = digits.test_x[:8]
    assert torch.allclose(loaded.reconstruct(x), model.eval().reconstruct(x))
    e = ex.embed(loaded, digits, progress=False)
    assert e.metrics["variant"] == "vae" and e.arrays["coords_model"].shape == (len(digits.test_x), 2)
    import gradio as gr

    demo = vaelab.explore(loaded, digits, name="my own networks", launch=False, progress=False)
    tabs = [b.label for b in demo.blocks.values() if isinstance(b, gr.Tab)]
    assert "Latent map" in tabs and "Latent sliders" in tabs  # a VAE: the sliders apply


# --- the command line ------------------------------------------------------------------------------------

def test_the_explore_command_embeds_a_checkpoint_over_an_image_folder(tmp_path):
    for k in range(6):
        _write(tmp_path / f"{k}.png", np.full((12, 12), 30 * k, np.uint8))
    ck = ROOT / "checkpoints" / "digits-vae-2d"
    if not (ck / "config.json").is_file():
        pytest.skip("the shipped digits-vae-2d checkpoint is not in this checkout")
    run = lambda *a: subprocess.run([sys.executable, "-m", "vaelab", "explore", *a], cwd=ROOT,  # noqa: E731
                                    capture_output=True, text=True, timeout=300)
    ok = run(str(ck), "--data", str(tmp_path), "--no-launch")
    assert ok.returncode == 0, ok.stderr
    bad = run("nonsense:thing", "--no-launch")
    assert bad.returncode == 2 and "is not a checkpoint folder" in bad.stderr


def test_model_specs_load_local_diffusers_folders_and_your_own_code(tmp_path, monkeypatch):
    vae = diffusers_kl()
    vae.save_pretrained(tmp_path / "kl")  # what a Hub id resolves to, here without network
    loaded = ex.load_model(f"diffusers:{tmp_path / 'kl'}")
    x = torch.rand(1, 3, 16, 16)
    assert torch.allclose(ex.adapt(loaded).reconstruct(x), ex.adapt(vae).reconstruct(x), atol=1e-6)
    (tmp_path / "mymodels.py").write_text("import torch\n"
                                          "def build():\n"
                                          "    return torch.nn.Identity()\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert isinstance(ex.load_model("python:mymodels:build"), nn.Identity)
    with pytest.raises(ex.ExploreError, match="could not load AutoencoderKL"):
        ex.load_model(f"diffusers:{tmp_path / 'missing'}")


@pytest.mark.parametrize("pixels", [300, 3000])
def test_pca_directions_match_scikit_learn_through_either_route(pixels):
    """Up to 2,048 pixels through the covariance, beyond through the rows' Gram matrix."""
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(0)
    x = rng.random((400, pixels)) * np.linspace(1, 0.05, pixels)  # distinct variances: unique directions
    mean, basis = ex.pca_fit(x, 20)
    ref = PCA(20, svd_solver="full").fit(x)
    assert np.allclose(mean, ref.mean_)
    assert np.allclose(np.abs((basis * ref.components_).sum(1)), 1, atol=1e-8)  # the same directions, up to sign


# --- images as an outsider brings them ------------------------------------------------------------------

def test_a_folder_with_images_beside_its_class_folders_keeps_them_all(tmp_path):
    (tmp_path / "a").mkdir()
    _write(tmp_path / "a" / "0.png", np.full((8, 8), 10, np.uint8))
    _write(tmp_path / "loose.png", np.full((8, 8), 200, np.uint8))
    im = ex.images(tmp_path, (1, 8, 8), progress=False)
    assert len(im.x) == 2 and im.classes == ["a", f"{tmp_path.name} (top level)"]
    assert im.labels.tolist() == [0, 1] and float(im.x[1].mean()) == pytest.approx(200 / 255, abs=1e-4)


def test_sixteen_bit_pngs_keep_their_grey_levels(tmp_path):
    level = np.full((8, 8), 20000, np.uint16)  # 0.305 of the 16-bit range; convert("L") would make it white
    Image.fromarray(level).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    im = ex.images(tmp_path, (1, 8, 8), progress=False)
    assert float(im.x.mean()) == pytest.approx(20000 / 65535, abs=1e-4)
    assert ex.folder_image_shape(tmp_path) == (1, 8, 8)


def test_a_dataset_read_item_by_item_has_its_range_read_once_for_all_its_images():
    """Float images in −1…1: a bright one (all ≥ 0) must not be taken as 0…1 while dark ones are
    taken as −1…1, which would make the bright one darker than it is."""
    values = [-0.8, 0.0, 0.9]

    class Signed:
        def __len__(self):
            return 3

        def __getitem__(self, i):
            return torch.full((1, 8, 8), values[i]), i

    im = ex.images(Signed(), (1, 8, 8), progress=False)
    assert [round(float(v), 4) for v in im.x.mean((1, 2, 3))] == [round((v + 1) / 2, 4) for v in values]


def test_the_image_shape_is_read_from_a_folder_whose_images_agree(tmp_path):
    for k in range(3):
        _write(tmp_path / f"{k}.png", np.full((8, 8), 40 * k, np.uint8))
    e = ex.embed(TinyAE(), tmp_path, progress=False)  # TinyAE does not say what it takes
    assert tuple(e.model.config.image_shape) == (1, 8, 8)
    _write(tmp_path / "big.png", np.zeros((12, 12), np.uint8))
    with pytest.raises(ex.ExploreError, match="do not share one size"):
        ex.embed(TinyAE(), tmp_path, progress=False)


def test_a_decoder_working_in_another_range_is_warned_about():
    class SignedAE(TinyAE):  # works in −1…1: tanh out, inputs expected in −1…1
        def decode(self, z):
            return torch.tanh(self.dec(z)).reshape(-1, 1, 8, 8)

    torch.manual_seed(0)
    x = torch.rand(40, 1, 8, 8)
    with pytest.warns(UserWarning, match=r"value_range=\(-1, 1\)"):
        e = ex.embed(SignedAE(), x, progress=False)
    assert e.metrics["warnings"] and e.metrics["value_range"] == [0.0, 1.0]
    quiet = ex.embed(SignedAE(), x, value_range=(-1, 1), progress=False)
    assert quiet.metrics["warnings"] == []
    assert ex.embed(TinyAE(), x, progress=False).metrics["warnings"] == []  # sigmoid out, 0…1: as assumed
    with pytest.warns(UserWarning, match=r"value_range=\(0, 1\)"):  # a 0…1 model taken for −1…1
        ex.embed(TinyAE(), (x > 0.5).float(), value_range=(-1, 1), progress=False)


# --- model specs and the explore command, as an outsider uses them --------------------------------------

def test_a_diffusers_folder_is_read_by_its_class_name_with_or_without_the_prefix(tmp_path):
    vq = diffusers_vq()
    vq.save_pretrained(tmp_path / "vq")
    for spec in (f"diffusers:{tmp_path / 'vq'}", str(tmp_path / "vq")):
        assert type(ex.load_model(spec)).__name__ == "VQModel"
    diffusers_kl().save_pretrained(tmp_path / "pipe" / "vae")
    (tmp_path / "pipe" / "model_index.json").write_text('{"_class_name": "StableDiffusionPipeline"}')
    with pytest.raises(ex.ExploreError, match=r"pipeline.*#vae"):
        ex.load_model(f"diffusers:{tmp_path / 'pipe'}")
    assert type(ex.load_model(f"diffusers:{tmp_path / 'pipe'}#vae")).__name__ == "AutoencoderKL"


def test_a_pythae_training_folder_is_explored_through_its_final_model(tmp_path):
    vae = pythae_vae()
    run = tmp_path / "my_run" / "VAE_training_2026-01-01"
    vae.save(str(run / "final_model"))
    for spec in (f"pythae:{tmp_path / 'my_run'}", str(tmp_path / "my_run")):
        assert type(ex.load_model(spec)).__name__ == "VAE"
    (tmp_path / "empty").mkdir()
    with pytest.raises(ex.ExploreError, match="final_model"):
        ex.load_model(f"pythae:{tmp_path / 'empty'}")


def _explore_cli(*args, env=None, cwd=ROOT):
    import os

    return subprocess.run([sys.executable, "-m", "vaelab", "explore", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**os.environ, **(env or {})})


def test_the_explore_command_says_plainly_what_it_cannot_do(tmp_path):
    ck = ROOT / "checkpoints" / "digits-vae-2d"
    if not (ck / "config.json").is_file():
        pytest.skip("the shipped digits-vae-2d checkpoint is not in this checkout")
    ok = _explore_cli(str(ck), "--data", "digits", "--no-launch")  # a dataset by name
    assert ok.returncode == 0, ok.stderr
    assert "reconstruction error" in ok.stdout and "images: digits test images" in ok.stdout
    offline = _explore_cli("someone/some-model", "--no-launch", env={"HF_HUB_OFFLINE": "1"})
    assert offline.returncode == 2 and "could not fetch someone/some-model" in offline.stderr
    assert "Traceback" not in offline.stderr
    bad = _explore_cli(str(ck), "--data", "cifar-100", "--no-launch")
    assert bad.returncode == 2 and "neither a folder nor a dataset" in bad.stderr


def test_an_mnist_checkpoint_without_mnist_is_refused_not_shown_the_small_digits(tmp_path):
    ck = ROOT / "checkpoints" / "ae-32"
    if not (ck / "config.json").is_file():
        pytest.skip("the shipped ae-32 checkpoint is not in this checkout")
    run = _explore_cli(str(ck), "--no-launch", "--data-dir", str(tmp_path), env={"VAELAB_FETCH": "0"})
    assert run.returncode == 2 and "was trained on mnist, which is not on this machine" in run.stderr


def test_an_explored_app_launched_later_keeps_the_apps_style_and_limits(monkeypatch):
    import gradio as gr

    from vaelab.app import launch_options
    from vaelab.app.explored import explore

    seen = {}
    monkeypatch.setattr(gr.Blocks, "launch", lambda self, *a, **k: seen.update(k))
    demo = explore(TinyAE(), torch.rand(30, 1, 8, 8), launch=False, progress=False, name="later")
    demo.launch(server_port=7999)
    assert seen["server_port"] == 7999
    assert all(seen[k] == v for k, v in launch_options().items() if k != "app_kwargs")
    assert seen["app_kwargs"]["middleware"]
