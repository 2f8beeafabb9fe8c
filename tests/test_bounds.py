"""The importance-weighted bound ``−log (1/k Σ_i w_i)`` (Burda, Grosse & Salakhutdinov 2015,
"Importance Weighted Autoencoders", eq. 8), :func:`vaelab.metrics.iwae_nll`, checked against
hand computations and against an exact log-likelihood.

The exact reference is a linear-Gaussian model, z ~ N(0, 1), x | z ~ N(z, σ²), whose marginal is
x ~ N(0, 1 + σ²) and whose posterior is z | x ~ N(x / (1 + σ²), σ² / (1 + σ²)). With the exact
posterior as the proposal every weight ``w = p(x, z) / q(z | x)`` equals ``p(x)``, so the bound is
exact for any k; with another proposal it lies above −log p(x) in expectation (k = 1: by
KL(q || p(z | x)), the negative ELBO) and comes down to it as k grows (Burda et al., theorem 1).
The log-weights are computed here with plain torch, independently of the models.
"""

import math

import pytest
import torch

from vaelab.metrics import iwae_nll

SIGMA = 0.5  # the likelihood's standard deviation
X = torch.tensor([-1.5, -0.3, 0.0, 0.8, 2.0], dtype=torch.float64)  # (B,) observations
POSTERIOR_MEAN = X / (1 + SIGMA ** 2)  # (B,)
POSTERIOR_STD = math.sqrt(SIGMA ** 2 / (1 + SIGMA ** 2))


def normal_log_pdf(v: torch.Tensor, mean, std) -> torch.Tensor:
    return -0.5 * math.log(2 * math.pi) - math.log(std) - 0.5 * ((v - mean) / std) ** 2


def true_nll() -> torch.Tensor:
    """−log p(x) under the marginal N(0, 1 + σ²), ``(B,)``."""
    return -normal_log_pdf(X, 0.0, math.sqrt(1 + SIGMA ** 2))


def log_weights(k: int, q_mean, q_std: float, generator: torch.Generator, reps: int = 1) -> torch.Tensor:
    """``log p(z) + log p(x | z) − log q(z | x)`` for ``z ~ q = N(q_mean, q_std²)``:
    ``(k, reps, B)``, ``reps`` independent sets of ``k`` samples per observation."""
    z = q_mean + q_std * torch.randn(k, reps, len(X), generator=generator, dtype=torch.float64)
    return normal_log_pdf(z, 0.0, 1.0) + normal_log_pdf(X, z, SIGMA) - normal_log_pdf(z, q_mean, q_std)


# --- by hand ----------------------------------------------------------------------------------

def test_two_unequal_weights_by_hand():
    # w = (1, 3): −log((1 + 3) / 2) = −log 2 (without the −log k term it would be −log 4)
    lw = torch.tensor([[math.log(1.0)], [math.log(3.0)]])  # (k=2, B=1)
    assert iwae_nll(lw).item() == pytest.approx(-math.log(2.0), abs=1e-6)


def test_three_weights_per_image_by_hand():
    lw = torch.log(torch.tensor([[1.0, 2.0], [3.0, 2.0], [8.0, 2.0]], dtype=torch.float64))  # (k=3, B=2)
    # image 0: −log((1 + 3 + 8) / 3) = −log 4; image 1: equal weights, −log 2 whatever k
    assert torch.allclose(iwae_nll(lw), torch.tensor([-math.log(4.0), -math.log(2.0)], dtype=torch.float64))


def test_one_sample_is_the_negative_log_weight():
    lw = torch.tensor([[-90.5, -101.25, -3.0]])  # (k=1, B=3): −ELBO estimates
    assert torch.equal(iwae_nll(lw), torch.tensor([90.5, 101.25, 3.0]))


def test_large_log_weights_do_not_overflow():
    # log-likelihoods of images are hundreds of nats: exp(−800) underflows, logsumexp does not
    lw = torch.tensor([[-800.0], [-800.0 + math.log(3.0)]], dtype=torch.float64)
    assert iwae_nll(lw).item() == pytest.approx(800.0 - math.log(2.0), abs=1e-9)


# --- against an exact log-likelihood ----------------------------------------------------------

@pytest.mark.parametrize("k", [1, 7, 100])
def test_exact_posterior_as_proposal_gives_the_exact_nll_for_any_k(k):
    lw = log_weights(k, POSTERIOR_MEAN, POSTERIOR_STD, torch.Generator().manual_seed(k))[:, 0]  # (k, B)
    assert torch.allclose(lw, -true_nll().expand(k, -1), atol=1e-12)  # every weight is p(x)
    assert torch.allclose(iwae_nll(lw), true_nll(), atol=1e-12)


def test_a_wrong_proposal_bounds_the_nll_from_above_and_tightens_with_k():
    # the prior as proposal: q = N(0, 1), far from the posterior for |x| large
    reps = 400  # independent bounds per observation and k, averaged to estimate their expectation
    g = torch.Generator().manual_seed(0)
    truth = true_nll()  # (B,)
    gaps = []
    for k in (1, 10, 100, 1000):
        lw = log_weights(k, torch.zeros_like(X), 1.0, g, reps)  # (k, reps, B)
        bounds = iwae_nll(lw.reshape(k, -1)).reshape(reps, len(X))  # (reps, B)
        gap = bounds.mean(0) - truth  # (B,) expected bound minus the true NLL
        stderr = bounds.std(0) / math.sqrt(reps)
        assert (gap > -3 * stderr).all(), (k, gap, stderr)  # never significantly below −log p(x)
        if k == 1:  # the negative ELBO: above by KL(q || p(z | x)), in closed form
            kl = (math.log(POSTERIOR_STD / 1.0) + (1.0 + POSTERIOR_MEAN ** 2) / (2 * POSTERIOR_STD ** 2)
                  - 0.5)  # (B,)
            assert ((gap - kl).abs() < 4 * stderr).all(), (gap, kl, stderr)
        gaps.append(float(gap.mean()))
    assert all(a > b for a, b in zip(gaps, gaps[1:])), gaps  # tighter as k grows
    assert gaps[0] > 1.0 and gaps[-1] < 0.02, gaps  # from nats above to within 0.02 nats
