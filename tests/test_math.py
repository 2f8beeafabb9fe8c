"""Mathematics of the classic and VAE families, checked against independent computations."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Normal, kl_divergence

import vaelab
from vaelab import losses, schedules
from vaelab.models.vae import reparameterize


def test_gaussian_kl_closed_form_matches_torch_and_monte_carlo():
    g = torch.Generator().manual_seed(0)
    mean = torch.randn(4, 3, generator=g)
    logvar = torch.randn(4, 3, generator=g) * 0.5
    closed = losses.gaussian_kl(mean, logvar)
    q = Normal(mean, torch.exp(0.5 * logvar))
    p = Normal(torch.zeros_like(mean), torch.ones_like(mean))
    assert torch.allclose(closed, kl_divergence(q, p), atol=1e-6)
    z = q.sample((200_000,))
    mc = (q.log_prob(z) - p.log_prob(z)).mean(0)
    assert torch.allclose(closed, mc, atol=0.02), (closed - mc).abs().max()


def test_vae_loss_is_the_textbook_elbo():
    """BCE + KL as written in Kingma & Welling (appendix B), on the same tensors and noise."""
    torch.manual_seed(0)
    model = vaelab.create("vae", tiny=True)
    x = torch.rand(16, 1, 8, 8)
    torch.manual_seed(42)
    out = model.loss(x)
    torch.manual_seed(42)
    h = model.encoder(x)
    mu, logvar = h[:, :2], h[:, 2:]
    z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
    x_hat = torch.sigmoid(model.decoder(z))
    bce = F.binary_cross_entropy(x_hat, x, reduction="sum") / 16
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / 16
    assert torch.allclose(out.terms["recon"], bce, rtol=1e-4)
    assert torch.allclose(out.terms["kl"], kld, rtol=1e-4)
    assert torch.allclose(out.total, bce + kld, rtol=1e-4)


def test_beta_weights_only_the_kl():
    torch.manual_seed(0)
    model = vaelab.create("beta-vae", tiny=True, beta=3.0)
    x = torch.rand(8, 1, 8, 8)
    out = model.loss(x)
    assert torch.allclose(out.total, out.terms["recon"] + 3.0 * out.terms["kl"])
    assert torch.allclose(out.terms["neg_elbo"], out.terms["recon"] + out.terms["kl"])


def test_reparameterization_has_the_right_moments_and_gradients():
    mean = torch.tensor([1.0, -2.0], requires_grad=True)
    logvar = torch.tensor([0.0, math.log(4.0)], requires_grad=True)
    z = reparameterize(mean.expand(100_000, 2), logvar.expand(100_000, 2),
                       generator=torch.Generator().manual_seed(0))
    assert torch.allclose(z.mean(0), mean.detach(), atol=0.02)
    assert torch.allclose(z.std(0), torch.tensor([1.0, 2.0]), atol=0.02)
    z.sum().backward()
    assert mean.grad is not None and logvar.grad is not None


def test_gaussian_likelihood_is_a_normalised_density():
    x = torch.rand(3, 1, 2, 2)
    mu = torch.rand(3, 1, 2, 2)
    ours = losses.reconstruction_nll(mu, x, "gaussian", sigma=0.3)
    ref = -Normal(mu, 0.3).log_prob(x).sum((1, 2, 3))
    assert torch.allclose(ours, ref, atol=1e-5)


def test_k_sparse_keeps_exactly_k_units_in_training_and_alpha_k_at_encoding():
    torch.manual_seed(0)
    model = vaelab.create("k-sparse-ae", image_shape=(1, 8, 8), hidden=(), latent_dim=20, k=3, alpha=2.0)
    x = torch.rand(32, 1, 8, 8)
    train_code = model.train_code(x)
    assert ((train_code != 0).sum(1) == 3).all()
    dense = model.encoder(x)
    top = dense.topk(3, dim=1).values
    assert torch.equal(train_code.topk(3, dim=1).values, top)  # the kept ones are the largest
    assert ((model.encode(x).z != 0).sum(1) == 6).all()


@pytest.mark.parametrize("hidden", [(), (6,)])
def test_contractive_penalty_matches_finite_differences(hidden):
    torch.manual_seed(0)
    model = vaelab.create("contractive-ae", image_shape=(1, 4, 4), hidden=hidden, latent_dim=5).double()
    assert model.jacobian_method == ("exact-sigmoid" if hidden == () else "autograd")
    x = torch.rand(3, 1, 4, 4, dtype=torch.float64)
    penalty = model.contractive_penalty(x)
    eps = 1e-6
    fd = torch.zeros(3, dtype=torch.float64)
    flat = x.flatten(1)
    with torch.no_grad():
        for i in range(flat.shape[1]):
            d = torch.zeros_like(flat)
            d[:, i] = eps
            up = model.encoder((flat + d).reshape(x.shape))
            down = model.encoder((flat - d).reshape(x.shape))
            fd += ((up - down) / (2 * eps)).pow(2).sum(1)
    assert torch.allclose(penalty, fd, rtol=1e-6), (penalty, fd)


def test_sparse_penalties():
    rho_hat = torch.tensor([0.05, 0.5])
    kl = losses.bernoulli_kl(0.05, rho_hat)
    assert kl[0].abs() < 1e-7 and kl[1] > 0
    torch.manual_seed(0)
    model = vaelab.create("sparse-ae", tiny=True, penalty="l1")
    x = torch.rand(8, 1, 8, 8)
    z = model.encoder(x)
    (value, _), = model.penalties(x, z).values()
    assert torch.allclose(value, z.abs().sum(1).mean())


@pytest.mark.parametrize("noise", ["gaussian", "masking", "salt_pepper"])
def test_denoising_corruption_levels(noise):
    from vaelab.models.classic import corrupt

    x = torch.full((200, 1, 10, 10), 0.5)
    out = corrupt(x, noise, 0.3, torch.Generator().manual_seed(0))
    changed = (out != x).float().mean()
    if noise == "gaussian":
        assert abs((out - x).std() - 0.3) < 0.01
    else:
        assert abs(changed - 0.3) < 0.01
    if noise == "salt_pepper":
        assert set(out[out != 0.5].unique().tolist()) <= {0.0, 1.0}
    torch.manual_seed(0)
    model = vaelab.create("denoising-ae", tiny=True, noise=noise)
    xi = torch.rand(4, 1, 8, 8)
    assert not torch.equal(model.train().corrupt(xi), xi)
    assert torch.equal(model.eval().corrupt(xi), xi)


def test_linear_autoencoder_matches_pca_on_digits(digits):
    """Baldi & Hornik (1989): a linear AE trained to convergence reaches PCA's error."""
    from sklearn.decomposition import PCA

    d = 8
    x_train = digits.train_x.flatten(1).numpy()
    x_test = digits.test_x.flatten(1).numpy()
    pca = PCA(d).fit(x_train)
    pca_err = ((pca.inverse_transform(pca.transform(x_test)) - x_test) ** 2).sum(1).mean()
    for tied in (False, True):
        torch.manual_seed(0)
        model = vaelab.create("linear-ae", image_shape=(1, 8, 8), latent_dim=d, tied=tied)
        vaelab.fit(model, digits, epochs=150, batch_size=64, lr=3e-3, progress=False)
        with torch.no_grad():
            ae_err = ((model.reconstruct(digits.test_x).flatten(1).numpy() - x_test) ** 2).sum(1).mean()
        assert ae_err <= 1.05 * pca_err, (tied, ae_err, pca_err)
        assert ae_err >= 0.95 * pca_err  # it cannot beat the optimal linear subspace by much either


def test_tied_linear_ae_has_one_weight_matrix():
    model = vaelab.create("linear-ae", image_shape=(1, 8, 8), latent_dim=3, tied=True)
    shapes = sorted(tuple(p.shape) for p in model.parameters())
    assert shapes == [(3,), (3, 64), (64,)]


def test_stacked_ae_pretrains_one_layer_at_a_time(digits):
    torch.manual_seed(0)
    model = vaelab.create("stacked-ae", image_shape=(1, 8, 8), hidden=(16, 8), latent_dim=4,
                          pretrain_epochs=1)
    phases = model.training_phases(2)
    assert phases == [("pretrain-0", 1), ("pretrain-1", 1), ("pretrain-2", 1), ("finetune", 2)]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.set_phase("pretrain-1")
    group = {id(p) for p in model.optimizer_groups()["model"]}
    assert group == {id(p) for m in (model.enc_layers[1], model.dec_layers[1]) for p in m.parameters()}
    history = vaelab.fit(model, digits.subset(256, 64), epochs=2, batch_size=64, progress=False)
    assert [e["phase"] for e in history["epochs"]] == ["pretrain-0", "pretrain-1", "pretrain-2",
                                                       "finetune", "finetune"]
    after = model.state_dict()
    assert all(not torch.equal(before[k], after[k]) for k in before)


def test_kl_warmup_schedules():
    assert schedules.kl_weight(0, 2.0) == 2.0
    lin = [schedules.kl_weight(s, 2.0, "linear", 100) for s in (0, 50, 100, 500)]
    assert lin == [0.0, 1.0, 2.0, 2.0]
    cyc = [schedules.kl_weight(s, 1.0, "cyclical", 400, cycles=4, ratio=0.5) for s in range(0, 400, 25)]
    assert cyc[:4] == [0.0, 0.5, 1.0, 1.0] and cyc[4:8] == [0.0, 0.5, 1.0, 1.0]
    assert schedules.kl_weight(400, 1.0, "cyclical", 400) == 1.0
    with pytest.raises(ValueError):
        schedules.kl_weight(0, 1.0, "sideways", 10)


def test_cosine_learning_rate_schedule():
    assert schedules.lr_factor(123, "constant", 1000) == 1.0
    cos = [schedules.lr_factor(s, "cosine", 1000, floor=0.1) for s in (0, 500, 1000, 5000)]
    assert cos[0] == pytest.approx(1.0) and cos[1] == pytest.approx(0.55)
    assert cos[2] == pytest.approx(0.1) and cos[3] == pytest.approx(0.1)
    steps = [schedules.lr_factor(s, "cosine", 1000) for s in range(0, 1001, 50)]
    assert all(a > b for a, b in zip(steps, steps[1:]))
    with pytest.raises(ValueError):
        schedules.lr_factor(0, "sideways", 10)


def test_kl_warmup_reaches_the_vae_loss():
    torch.manual_seed(0)
    model = vaelab.create("vae", tiny=True, kl_warmup="linear", warmup_steps=10)
    x = torch.rand(8, 1, 8, 8)
    out0 = model.loss(x, step=0)
    assert float(out0.terms["beta"]) == 0.0
    assert torch.allclose(out0.total, out0.terms["recon"])
    assert float(model.loss(x, step=5).terms["beta"]) == 0.5


def test_onecycle_learning_rate_matches_pytorchs_one_cycle_policy():
    from vaelab.schedules import lr_factor

    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([param], lr=2e-3)
    total = 97
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=total, cycle_momentum=False)
    for step in range(total):
        assert math.isclose(opt.param_groups[0]["lr"], 2e-3 * lr_factor(step, "onecycle", total), rel_tol=1e-9)
        opt.step()
        sched.step()
