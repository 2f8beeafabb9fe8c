"""The mathematics of vector quantisation (van den Oord et al. 2017), checked on small tensors.

The registry-wide contract (shapes, save/load, determinism, gradients reaching every parameter)
covers vq-vae and vq-vae-2 in test_contract.py; these tests check the quantiser itself.
"""

import pytest
import torch

import vaelab
from vaelab.nn.bottleneck import BottleneckOutput, perplexity
from vaelab.nn.quantize import (QuantizerConfig, VectorQuantizer, code_counts, ema_update, kmeans,
                                nearest_code, squared_distances)


def quantizer(**overrides) -> VectorQuantizer:
    torch.manual_seed(0)
    values = {"codebook_size": 8, "code_dim": 3, "ema": False, "kmeans_init": False}
    values.update(overrides)
    return VectorQuantizer(QuantizerConfig(**values))


def as_zero(grad, like):
    return torch.zeros_like(like) if grad is None else grad


# --- nearest code -----------------------------------------------------------------------------

def test_nearest_code_equals_brute_force_search():
    g = torch.Generator().manual_seed(1)
    z, codebook = torch.randn(200, 5, generator=g), torch.randn(17, 5, generator=g)
    brute = ((z[:, None, :] - codebook[None, :, :]) ** 2).sum(-1)  # (N, K, D) -> (N, K)
    assert torch.allclose(squared_distances(z, codebook), brute, atol=1e-4)
    assert torch.equal(nearest_code(z, codebook), brute.argmin(1))


def test_quantizer_output_is_the_nearest_code_per_cell():
    q = quantizer().eval()
    z_e = torch.randn(2, 3, 4, 5)
    out = q(z_e)
    assert isinstance(out, BottleneckOutput) and out.logits is None
    assert out.indices.shape == (2, 4, 5) and out.z_q.shape == z_e.shape
    flat = z_e.permute(0, 2, 3, 1).reshape(-1, 3)
    brute = ((flat[:, None] - q.codebook[None].detach()) ** 2).sum(-1).argmin(1)
    assert torch.equal(out.indices.reshape(-1), brute)
    assert torch.allclose(out.z_q, q.lookup(out.indices))


# --- gradients --------------------------------------------------------------------------------

def test_straight_through_gradient_reaches_encoder_unchanged():
    q = quantizer().eval()
    z_e = torch.randn(2, 3, 4, 4, requires_grad=True)
    out = q(z_e)
    out.z_q.retain_grad()
    weight = torch.randn_like(z_e)
    decoder_loss = (torch.tanh(out.z_q) * weight).sum()  # any function of the decoder input
    decoder_loss.backward()
    assert out.z_q.grad.abs().sum() > 0
    assert torch.equal(z_e.grad, out.z_q.grad)


def test_codebook_term_moves_only_codes_and_commitment_only_encoder():
    q = quantizer(beta=0.25)
    z_e = torch.randn(4, 3, 2, 2, requires_grad=True)
    out = q(z_e, update=False)
    used = torch.zeros(8, dtype=torch.bool)
    used[out.indices.unique()] = True

    g_z, g_e = torch.autograd.grad(out.losses["codebook"], (z_e, q.codebook), retain_graph=True,
                                   allow_unused=True)
    assert torch.count_nonzero(as_zero(g_z, z_e)) == 0  # sg[z_e]: the encoder is untouched
    g_e = as_zero(g_e, q.codebook)
    assert (g_e[used].abs().sum(1) > 0).all()  # every chosen code is pulled
    assert torch.count_nonzero(g_e[~used]) == 0  # unchosen codes are not

    g_z, g_e = torch.autograd.grad(out.losses["commitment"], (z_e, q.codebook), allow_unused=True)
    assert torch.count_nonzero(as_zero(g_e, q.codebook)) == 0  # sg[e]: the codes are untouched
    assert torch.count_nonzero(as_zero(g_z, z_e)) == z_e.numel()
    # same distance, weighted by β
    assert torch.allclose(out.losses["commitment"], 0.25 * out.losses["codebook"])


def test_ema_quantizer_has_no_codebook_term_and_codebook_is_a_buffer():
    q = quantizer(ema=True)
    out = q(torch.randn(2, 3, 2, 2))
    assert set(out.losses) == {"commitment"}
    assert "codebook" in dict(q.named_buffers()) and not list(q.parameters())


# --- EMA --------------------------------------------------------------------------------------

def test_one_ema_step_equals_the_formula_on_a_hand_made_example():
    cluster_size = torch.tensor([1.0, 1.0])
    embed_sum = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    z = torch.tensor([[2.0, 0.0], [4.0, 0.0], [0.0, 3.0]])
    indices = torch.tensor([0, 0, 1])
    size, sums, codebook = ema_update(cluster_size, embed_sum, z, indices, decay=0.5, epsilon=0.1)
    # n = (2, 1): N = 0.5·(1, 1) + 0.5·(2, 1) = (1.5, 1.0)
    assert torch.allclose(size, torch.tensor([1.5, 1.0]))
    # Σz = ((6, 0), (0, 3)): m = 0.5·I + 0.5·Σz
    assert torch.allclose(sums, torch.tensor([[3.5, 0.0], [0.0, 2.0]]))
    # Laplace: Ñ = (N + ε) / (ΣN + Kε) · ΣN = (1.6, 1.1) / 2.7 · 2.5; e = m / Ñ
    expected = torch.tensor([[3.5 * 2.7 / (1.6 * 2.5), 0.0], [0.0, 2.0 * 2.7 / (1.1 * 2.5)]])
    assert torch.allclose(codebook, expected)
    assert torch.allclose(codebook, torch.tensor([[2.3625, 0.0], [0.0, 1.9636364]]))
    assert torch.equal(cluster_size, torch.tensor([1.0, 1.0]))  # inputs untouched (pure)


def test_one_ema_step_with_an_asymmetric_decay_keeps_gamma_on_the_old_average():
    # γ = 0.9: the averages keep 0.9 of their old value and take 0.1 of this batch's; at γ = 0.5
    # (above) swapping γ and 1 − γ would go unnoticed, here it gives other numbers
    cluster_size = torch.tensor([4.0, 1.0])
    embed_sum = torch.tensor([[4.0, 0.0], [0.0, 1.0]])  # codes (1, 0) and (0, 1)
    z = torch.tensor([[3.0, 0.0], [5.0, 0.0], [0.0, 2.0]])
    indices = torch.tensor([0, 0, 1])  # n = (2, 1), Σz = ((8, 0), (0, 2))
    size, sums, codebook = ema_update(cluster_size, embed_sum, z, indices, decay=0.9, epsilon=0.0)
    # N = 0.9·(4, 1) + 0.1·(2, 1) = (3.8, 1.0)   [swapped: 0.1·(4, 1) + 0.9·(2, 1) = (2.2, 1.0)]
    assert torch.allclose(size, torch.tensor([3.8, 1.0]))
    # m = 0.9·((4, 0), (0, 1)) + 0.1·((8, 0), (0, 2)) = ((4.4, 0), (0, 1.1))   [swapped: 7.6, 1.9]
    assert torch.allclose(sums, torch.tensor([[4.4, 0.0], [0.0, 1.1]]))
    # ε = 0: Ñ = N, e = m / N = ((4.4 / 3.8, 0), (0, 1.1))   [swapped: 7.6 / 2.2 ≈ 3.45, 1.9]
    assert torch.allclose(codebook, torch.tensor([[4.4 / 3.8, 0.0], [0.0, 1.1]]))
    assert torch.allclose(codebook, torch.tensor([[1.1578947, 0.0], [0.0, 1.1]]))


def test_training_step_applies_the_ema_update_after_quantising():
    q = quantizer(ema=True, decay=0.9).train()
    before = {k: v.clone() for k, v in q.state_dict().items()}
    z_e = torch.randn(2, 3, 3, 3)
    out = q(z_e)
    flat = z_e.permute(0, 2, 3, 1).reshape(-1, 3)
    # the output used the old codebook ...
    assert torch.allclose(out.z_q, before["codebook"][out.indices].permute(0, 3, 1, 2))
    # ... and the state moved by exactly one ema_update
    size, sums, codebook = ema_update(before["cluster_size"], before["embed_sum"], flat,
                                      out.indices.reshape(-1), 0.9, q.config.epsilon)
    assert torch.allclose(q.cluster_size, size) and torch.allclose(q.embed_sum, sums)
    assert torch.allclose(q.codebook, codebook)


def test_eval_and_update_false_leave_the_state_alone():
    q = quantizer(ema=True, restart_after=1, kmeans_init=True)
    before = {k: v.clone() for k, v in q.state_dict().items()}
    q.eval()(torch.randn(2, 3, 2, 2))
    q.train()(torch.randn(2, 3, 2, 2), update=False)
    for k, v in q.state_dict().items():
        assert torch.equal(v, before[k]), k


# --- dead codes, usage, k-means ----------------------------------------------------------------

def dead_code_setup(restart_after: int):
    q = quantizer(codebook_size=8, code_dim=2, ema=True, restart_after=restart_after).train()
    with torch.no_grad():
        live = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
        q.codebook.copy_(torch.cat([live, torch.full((4, 2), 100.0)]))  # codes 4..7 unreachable
        q.embed_sum.copy_(q.codebook)
    return q


def test_dead_code_restart_reseeds_unused_codes_from_encoder_outputs():
    q = dead_code_setup(restart_after=3)
    batches = [torch.rand(4, 2, 3, 3) for _ in range(3)]
    for z_e in batches[:2]:
        q(z_e)
    assert (q.codebook[4:] > 99).all()  # unused for 2 steps: not yet dead (EMA smoothing aside)
    assert torch.equal(q.steps_unused[4:], torch.tensor([2, 2, 2, 2]))
    q(batches[2])
    flat = batches[2].permute(0, 2, 3, 1).reshape(-1, 2)
    for code in q.codebook[4:]:  # each re-seeded code is one of this batch's encoder outputs
        assert (flat == code).all(1).any()
    assert len({tuple(c.tolist()) for c in q.codebook[4:]}) == 4  # distinct outputs
    assert (q.steps_unused[4:] == 0).all()
    assert torch.allclose(q.embed_sum[4:] / q.cluster_size[4:, None], q.codebook[4:])
    # the re-seeded codes now win cells
    assert (code_counts(q.eval()(batches[2]).indices, 8)[4:] > 0).any()


def test_restart_threshold_reseeds_rarely_used_codes_before_they_are_dead():
    q = dead_code_setup(restart_after=1000)
    q = VectorQuantizer(QuantizerConfig(**{**q.config.__dict__, "restart_threshold": 0.5})).train()
    with torch.no_grad():
        q.codebook.copy_(dead_code_setup(1000).codebook)
        q.embed_sum.copy_(q.codebook)
        q.cluster_size[4:] = 0.1  # codes 4..7: rarely used lately (EMA size below the threshold)
    live = q.codebook[:4].clone()
    z_e = torch.rand(4, 2, 3, 3)
    q(z_e)
    flat = z_e.permute(0, 2, 3, 1).reshape(-1, 2)
    for code in q.codebook[4:]:  # re-seeded from this batch although unused for only one step
        assert (flat == code).all(1).any()
    assert (q.cluster_size[:4] >= 0.5).all()
    assert ((q.codebook[:4] - live).abs() < 1).all()  # the well-used codes only moved by the EMA
    with pytest.raises(ValueError, match="restart_threshold"):
        quantizer(restart_threshold=1.0)  # re-seeded codes (EMA size 1) would be re-seeded again at once


def test_residual_blocks_widen_what_each_code_cell_sees():
    def pixels_seen(res_blocks: int) -> int:
        torch.manual_seed(0)
        model = vaelab.create("vq-vae", image_shape=(1, 28, 28), res_blocks=res_blocks, kmeans_init=False)
        x = torch.rand(1, 1, 28, 28, requires_grad=True)
        model.encoder(x)[0, :, 0, 0].sum().backward()  # the top-left cell of the 7×7 grid
        return int((x.grad.abs() > 0).sum())

    assert pixels_seen(0) == 7 * 7  # two 4×4 stride-2 convs (padding 1): a 7×7 corner patch
    assert pixels_seen(2) > 4 * pixels_seen(0)


def test_without_restart_dead_codes_stay_dead():
    q = dead_code_setup(restart_after=0)
    for _ in range(5):
        q(torch.rand(4, 2, 3, 3))
    assert (q.codebook[4:] > 50).all()
    assert (q.usage[4:] == 0).all()


def test_batch_perplexity_of_uniform_usage_is_k():
    # the formula itself is checked in test_bottleneck.py; here, what the quantiser reports:
    # uniform assignment of K cells -> K
    q = quantizer(codebook_size=4, code_dim=2).eval()
    z_e = q.codebook.detach().t().reshape(1, 2, 2, 2).clone()  # each code exactly once
    out = q(z_e)
    assert torch.isclose(out.stats["perplexity"], torch.tensor(4.0))
    assert out.stats["perplexity"] == perplexity(code_counts(out.indices, 4)).float()
    assert out.perplexity is out.stats["perplexity"]


def test_usage_counts_accumulate_in_training_only():
    q = quantizer().train()
    z1, z2 = torch.randn(3, 3, 2, 2), torch.randn(3, 3, 2, 2)
    i1, i2 = q(z1).indices, q(z2).indices
    assert torch.equal(q.usage, code_counts(i1, 8) + code_counts(i2, 8))
    q.eval()(z1)
    assert int(q.usage.sum()) == 24


def test_kmeans_initialisation_runs_once_on_the_first_training_batch():
    q = quantizer(kmeans_init=True, kmeans_iters=5)
    assert not bool(q.initialised)
    z_e = torch.randn(4, 3, 5, 5)
    flat = z_e.permute(0, 2, 3, 1).reshape(-1, 3)
    torch.manual_seed(7)
    q.train()(z_e)
    torch.manual_seed(7)
    assert torch.allclose(q.codebook, kmeans(flat, 8, 5))  # no EMA, no restart: untouched after
    assert bool(q.initialised)
    before = q.codebook.detach().clone()
    q(torch.randn(4, 3, 5, 5))
    assert torch.equal(q.codebook, before)  # not re-run


def test_kmeans_lowers_the_distortion_of_its_random_start():
    z = torch.randn(300, 2)

    def distortion(c):
        return squared_distances(z, c).min(1).values.sum()

    torch.manual_seed(0)
    start = kmeans(z, 10, iters=0)
    torch.manual_seed(0)
    fitted = kmeans(z, 10, iters=10)
    assert distortion(fitted) < distortion(start)


# --- the models -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["vq-vae", "vq-vae-2"])
def test_encode_does_not_change_the_model_state(name):
    torch.manual_seed(0)
    model = vaelab.create(name, tiny=True).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.encode(torch.rand(8, 1, 8, 8))
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


@pytest.mark.parametrize("name", ["vq-vae", "vq-vae-2"])
@pytest.mark.parametrize("ema", [True, False])
def test_loss_terms(name, ema):
    torch.manual_seed(0)
    model = vaelab.create(name, tiny=True, ema=ema).train()
    terms = model.loss(torch.rand(8, 1, 8, 8)).terms
    assert ("codebook" in terms) == (not ema)
    vq = sum(terms[k] for k in ("codebook", "commitment") if k in terms)
    assert torch.allclose(terms["total"], terms["recon"] + vq)
    assert any(k.startswith("perplexity") for k in terms)


def test_vq_vae_2_grids_on_mnist_sized_images():
    torch.manual_seed(0)
    model = vaelab.create("vq-vae-2", codebook_size=8, latent_dim=4, channels=(4, 8)).eval()
    assert model.info.index_shapes == ((7, 7), (4, 4))
    assert model.info.latent_shapes == ((4, 7, 7), (4, 4, 4))
    latent = model.encode(torch.rand(2, 1, 28, 28))
    assert latent.indices[0].shape == (2, 7, 7) and latent.indices[1].shape == (2, 4, 4)
    assert model.decode(latent.z).shape == (2, 1, 28, 28)
    assert vaelab.create("vq-vae", codebook_size=8, latent_dim=4).info.index_shapes == ((7, 7),)


@pytest.mark.parametrize("name", ["vq-vae", "vq-vae-2"])
def test_learned_codebooks_get_gradients_without_ema(name):
    # the contract test covers the default (EMA codebooks are buffers); here they are parameters
    torch.manual_seed(0)
    model = vaelab.create(name, tiny=True, ema=False).train()
    total = model.loss(torch.rand(16, 1, 8, 8)).total
    named = dict(model.named_parameters())
    grads = torch.autograd.grad(total, list(named.values()), allow_unused=True)
    for (pname, _), grad in zip(named.items(), grads):
        assert grad is not None and grad.abs().sum() > 0, pname
    assert any(p.endswith("codebook") for p in named)
