"""The swappable-bottleneck contract: the vector quantiser and the Gumbel-softmax quantiser return
the same :class:`~vaelab.nn.bottleneck.BottleneckOutput`, either one trains in the grid
autoencoder, and the one perplexity formula gives what the three it replaced gave.
"""

import math

import pytest
import torch
from safetensors.torch import load_file

import vaelab
from vaelab import metrics
from vaelab.models.base import BaseConfig, Latent, LossOutput, ModelInfo
from vaelab.models.grid import GridAutoEncoder
from vaelab.nn.bottleneck import BottleneckOutput, perplexity
from vaelab.nn.grid import GridDecoder, GridEncoder
from vaelab.nn.gumbel import GumbelQuantizer, code_perplexity
from vaelab.nn.quantize import QuantizerConfig, VectorQuantizer

from .conftest import ROOT

K, D = 8, 4  # codebook size, code dimension


def vq(ema: bool = False) -> VectorQuantizer:
    return VectorQuantizer(QuantizerConfig(codebook_size=K, code_dim=D, ema=ema, kmeans_init=False))


def gumbel(hard: bool = True) -> GumbelQuantizer:
    return GumbelQuantizer(K, dim=1, hard=hard, code_dim=D)  # (B, K, h, w) logits, own codebook


# bottleneck factory, its input channels per cell, the loss names it reports
BOTTLENECKS = {
    "vq": (vq, D, {"commitment", "codebook"}),
    "vq-ema": (lambda: vq(ema=True), D, {"commitment"}),
    "gumbel": (gumbel, K, {"kl"}),
    "gumbel-soft": (lambda: gumbel(hard=False), K, {"kl"}),
}


# --- the contract -----------------------------------------------------------------------------

@pytest.mark.parametrize("name", BOTTLENECKS)
@pytest.mark.parametrize("training", [True, False])
def test_both_bottlenecks_return_the_same_contract(name, training):
    make, in_channels, loss_names = BOTTLENECKS[name]
    torch.manual_seed(0)
    q = make().train(training)
    out = q(torch.randn(3, in_channels, 2, 5))  # (B, in, h, w)
    assert isinstance(out, BottleneckOutput)
    assert out.z_q.shape == (3, D, 2, 5)  # what the decoder takes
    assert out.indices.shape == (3, 2, 5) and out.indices.dtype == torch.int64
    assert int(out.indices.min()) >= 0 and int(out.indices.max()) < K
    assert set(out.losses) == loss_names
    assert set(out.stats) == {"perplexity"} and out.perplexity is out.stats["perplexity"]
    for value in (*out.losses.values(), *out.stats.values()):
        assert value.shape == () and torch.isfinite(value)
    assert 1 - 1e-5 <= float(out.perplexity) <= K + 1e-5
    assert (out.logits is None) == name.startswith("vq")
    if not training:  # no sampling noise, no codebook update: z_q is each cell's codebook row
        assert torch.allclose(q.lookup(out.indices), out.z_q, atol=1e-6)


def test_gumbel_without_codebook_passes_its_codes_on():
    q = GumbelQuantizer(5, dim=-1).eval()  # the categorical VAE: (B, N, K), z is the codes
    logits = torch.randn(6, 4, 5)
    out = q(logits)
    assert out.z_q.shape == (6, 4, 5) and out.indices.shape == (6, 4)
    assert torch.equal(out.z_q, torch.nn.functional.one_hot(out.indices, 5).float())
    assert torch.equal(q.lookup(out.indices), out.z_q)
    assert list(q.parameters()) == []


def test_gumbel_kl_is_summed_per_image_then_averaged():
    q = GumbelQuantizer(K, dim=1, code_dim=D)
    logits = torch.randn(3, K, 2, 2)
    log_q = torch.log_softmax(logits, 1)
    per_cell = (log_q.exp() * (log_q + math.log(K))).sum(1)  # KL(q || uniform), (B, h, w)
    assert torch.allclose(q(logits).losses["kl"], per_cell.sum((1, 2)).mean(), atol=1e-6)


# --- swapping them in the grid autoencoder ----------------------------------------------------

class TinyGrid(GridAutoEncoder):
    """The grid autoencoder with any bottleneck and the plainest loss: recon + its named terms."""

    def encode(self, x, y=None) -> Latent:  # in eval mode: nearest code / argmax, no codebook update
        q = self.quantizer(self.encoder(x))
        return Latent(z=q.z_q, indices=q.indices)

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(latent="discrete", variational=False, conditional=False,
                         latent_shapes=((D, *self.grid),), index_shapes=(self.grid,))

    def loss(self, x, y=None, step=0) -> LossOutput:
        q = self.quantizer(self.encoder(x))
        recon = self.recon_nll(self.decode_params(q.z_q), x).mean()
        total = recon + sum(q.losses.values())
        return LossOutput(total, {"recon": recon, **q.losses, "total": total, **q.stats})


@pytest.mark.parametrize("name", BOTTLENECKS)
def test_either_bottleneck_trains_in_the_grid_autoencoder(name):
    make, in_channels, loss_names = BOTTLENECKS[name]
    torch.manual_seed(0)
    config = BaseConfig(image_shape=(1, 8, 8), backbone="conv", channels=(4, 8))
    model = TinyGrid(config, make, encoder_out=in_channels, decoder_in=D, conv_layers=1).train()
    assert isinstance(model.encoder, GridEncoder) and isinstance(model.decoder, GridDecoder)
    x = torch.rand(16, 1, 8, 8)
    out = model.loss(x)
    assert torch.isfinite(out.total) and loss_names <= set(out.terms) and "perplexity" in out.terms
    out.total.backward()
    for pname, p in model.encoder.named_parameters():  # straight-through / relaxed gradients
        assert p.grad is not None and p.grad.abs().sum() > 0, pname
    before = {n: p.detach().clone() for n, p in model.encoder.named_parameters()}
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    assert all(not torch.equal(p, before[n]) for n, p in model.encoder.named_parameters())
    assert torch.isfinite(model.loss(x).total)


def test_vq_vae_and_dvae_share_the_encoder_decoder_pair():
    torch.manual_seed(0)
    vq_vae, dvae = vaelab.create("vq-vae", tiny=True), vaelab.create("dvae", tiny=True)
    for model in (vq_vae, dvae):
        assert isinstance(model, GridAutoEncoder)
        assert type(model.encoder) is GridEncoder and type(model.decoder) is GridDecoder
    assert isinstance(vq_vae.quantizer, VectorQuantizer) and isinstance(dvae.quantizer, GumbelQuantizer)
    # the layer sequences the shipped checkpoints were saved with
    assert [type(m).__name__ for m in dvae.encoder] == ["ConvTrunk", "Conv2d", "ReLU", "Conv2d"]
    assert [type(m).__name__ for m in dvae.decoder] == ["Conv2d", "ReLU", "Conv2d", "ReLU", "ConvTrunkDecoder"]
    assert [type(m).__name__ for m in vq_vae.encoder] == ["ConvTrunk", "Conv2d"]
    assert [type(m).__name__ for m in vq_vae.decoder] == ["Conv2d", "ReLU", "ConvTrunkDecoder"]
    res = vaelab.create("vq-vae", tiny=True, res_blocks=2)
    assert [type(m).__name__ for m in res.encoder] == ["ConvTrunk", "ResidualStack", "Conv2d"]
    assert [type(m).__name__ for m in res.decoder] == ["Conv2d", "ResidualStack", "ConvTrunkDecoder"]


def test_dvae_checkpoints_with_a_top_level_codebook_still_load(tmp_path):
    """dVAE checkpoints written before the codebook moved into the quantiser stored it as
    ``codebook``: such a folder (the shipped one with its key renamed back) loads the same."""
    import shutil

    from safetensors.torch import save_file

    folder = tmp_path / "dvae-before"
    shutil.copytree(ROOT / "checkpoints" / "dvae", folder, ignore=shutil.ignore_patterns("training_state.*", "prior"))
    stored = load_file(str(folder / "model.safetensors"))
    if "quantizer.codebook" in stored:
        stored["codebook"] = stored.pop("quantizer.codebook")
        save_file(stored, str(folder / "model.safetensors"))
    model = vaelab.load_checkpoint(folder)
    assert torch.equal(model.quantizer.codebook, stored["codebook"])
    assert "quantizer.codebook" in model.state_dict() and "codebook" not in model.state_dict()


# --- one perplexity ---------------------------------------------------------------------------

def old_quantizer_perplexity(counts):
    p = counts.double() / counts.sum().clamp_min(1)
    return (-(p * torch.log(p.clamp_min(1e-30))).sum()).exp().float()


def old_metrics_perplexity(counts):
    p = counts.double() / counts.sum()
    nz = p[p > 0]
    return float(torch.exp(-(nz * nz.log()).sum()))


def old_code_perplexity(codes, dim=-1, pooled_dims=(0,)):
    codes = codes.movedim(dim, -1)
    p = codes.mean(dim=[d % codes.dim() for d in pooled_dims])
    return (-(p * torch.log(p.clamp_min(1e-12))).sum(-1)).exp().mean()


COUNTS = [torch.full((512,), 7), torch.tensor([0, 0, 30, 0]), torch.tensor([5, 5, 0, 0]),
          torch.tensor([1, 2, 3, 4, 0, 10]), torch.zeros(4, dtype=torch.long)]


@pytest.mark.parametrize("counts", COUNTS)
def test_perplexity_equals_the_formulas_it_replaced(counts):
    assert torch.equal(perplexity(counts).float(), old_quantizer_perplexity(counts))
    assert metrics.perplexity(counts) == old_metrics_perplexity(counts)
    # probabilities give what their counts give
    assert torch.allclose(perplexity(counts / counts.sum().clamp_min(1)), perplexity(counts))


def test_perplexity_of_uniform_use_is_k_and_of_one_code_is_one():
    assert perplexity(torch.full((512,), 7)).item() == pytest.approx(512)
    assert perplexity(torch.tensor([0, 0, 30, 0])).item() == 1.0
    assert perplexity(torch.tensor([5, 5, 0, 0])).item() == pytest.approx(2)
    assert metrics.perplexity(torch.full((64,), 3)) == pytest.approx(64)
    # one distribution per row along dim: (N, K) -> (N,)
    rows = torch.tensor([[0.25, 0.25, 0.25, 0.25], [0.0, 1.0, 0.0, 0.0], [0.5, 0.0, 0.5, 0.0]])
    assert torch.allclose(perplexity(rows), torch.tensor([4.0, 1.0, 2.0], dtype=torch.float64))
    assert torch.allclose(perplexity(rows.t(), dim=0), perplexity(rows))


@pytest.mark.parametrize("pooled", [(0,), (0, 1, 2)])
def test_code_perplexity_equals_the_formula_it_replaced(pooled):
    g = torch.Generator().manual_seed(0)
    hard = torch.nn.functional.one_hot(torch.randint(0, 6, (32, 3, 3), generator=g), 6).float()
    soft = torch.softmax(torch.randn(32, 3, 3, 6, generator=g), -1)
    for codes in (hard, soft, torch.eye(6).repeat(4, 3, 3, 1)):
        assert torch.allclose(code_perplexity(codes, -1, pooled), old_code_perplexity(codes, -1, pooled))
        assert code_perplexity(codes, -1, pooled).dtype == codes.dtype
    assert code_perplexity(torch.eye(8).repeat(4, 1)).item() == pytest.approx(8)
