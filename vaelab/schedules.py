"""Schedules as pure functions of the optimisation step.

KL warm-up (Bowman et al. 2016, linear; Fu et al. 2019, cyclical) for every VAE-like model, and
temperature annealing for Gumbel-softmax models (Jang et al. 2016, exponential decay to a floor),
and the learning-rate schedule the trainer applies to every optimiser.
"""

from __future__ import annotations

import math


def kl_weight(step: int, beta: float, warmup: str = "none", warmup_steps: int = 0,
              cycles: int = 4, ratio: float = 0.5) -> float:
    """The KL weight at ``step``.

    - ``none``: ``beta`` throughout.
    - ``linear``: rises from 0 to ``beta`` over ``warmup_steps``, then stays.
    - ``cyclical``: ``cycles`` cycles over ``warmup_steps``; in each, rises linearly over the first
      ``ratio`` of the cycle, then holds ``beta``; after ``warmup_steps``, ``beta``.
    """
    if warmup == "none" or warmup_steps <= 0:
        return beta
    if warmup == "linear":
        return beta * min(1.0, step / warmup_steps)
    if warmup == "cyclical":
        if step >= warmup_steps:
            return beta
        period = warmup_steps / cycles
        phase = (step % period) / period
        return beta * min(1.0, phase / ratio)
    raise ValueError(f"unknown warm-up {warmup!r}; choose none, linear or cyclical")


def temperature(step: int, start: float = 1.0, floor: float = 0.5, schedule: str = "exp",
                rate: float = 1e-4, total_steps: int = 10000, every: int = 1) -> float:
    """Gumbel-softmax temperature at ``step``.

    - ``exp``: ``max(floor, start · exp(-rate · step))`` (Jang et al. 2016, section 4);
    - ``cosine``: from ``start`` to ``floor`` over ``total_steps`` along a half cosine;
    - ``constant``: ``start``.

    With ``every > 1`` the temperature is updated only every ``every`` steps (a staircase, as in
    Jang et al., who update τ every N ∈ {500, 1000} steps).
    """
    if every > 1:
        step = (step // every) * every
    if schedule == "constant":
        return start
    if schedule == "exp":
        return max(floor, start * math.exp(-rate * step))
    if schedule == "cosine":
        t = min(1.0, step / max(1, total_steps))
        return floor + 0.5 * (start - floor) * (1 + math.cos(math.pi * t))
    raise ValueError(f"unknown temperature schedule {schedule!r}; choose exp, cosine or constant")


def lr_factor(step: int, schedule: str = "constant", total_steps: int = 0, floor: float = 0.01) -> float:
    """Multiplier of the base learning rate at ``step``.

    - ``constant``: 1 throughout.
    - ``cosine``: from 1 down to ``floor`` over ``total_steps`` along a half cosine (Loshchilov &
      Hutter 2017, without restarts), then ``floor``.
    - ``onecycle``: the one-cycle policy (Smith & Topin 2019) as PyTorch's ``OneCycleLR`` draws
      it: up from 1/25 to 1 along a half cosine over the first 30 % of the steps, then down to
      1/(25·10⁴) along another (the learning rate only; momentum is not cycled).
    """
    if schedule == "constant" or total_steps <= 0:
        return 1.0
    if schedule == "cosine":
        t = min(1.0, step / total_steps)
        return floor + 0.5 * (1.0 - floor) * (1 + math.cos(math.pi * t))
    if schedule == "onecycle":
        start, end, warm = 1 / 25, 1 / 25e4, 0.3 * total_steps - 1  # OneCycleLR's defaults
        if step <= warm:
            a, b, t = start, 1.0, step / warm
        else:
            a, b, t = 1.0, end, min(1.0, (step - warm) / (total_steps - 1 - warm))
        return b + 0.5 * (a - b) * (1 + math.cos(math.pi * t))
    raise ValueError(f"unknown learning-rate schedule {schedule!r}; choose constant, cosine or onecycle")
