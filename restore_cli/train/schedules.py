"""β (KL weight) schedules, learning-rate schedules and the optimizer factory of ``train-vae``.

β schedules are functions of the *fractional epoch* (``step / steps_per_epoch``), so a run
stopped by ``--steps`` or resumed mid-epoch sees the same β as an uninterrupted one. They are
evaluated on the host and passed to the jitted step as a scalar, so changing β never recompiles.

* ``linear-step`` — the original: β starts at ``beta_start`` and is raised by equal steps every
  ``anneal_epochs`` epochs, reaching ``beta_max`` at the last raise that fits in the run;
* ``cosine`` — a smooth half-cosine rise from ``beta_start`` to ``beta_max`` over the run;
* ``sigmoid`` — a logistic rise centred on the middle of the run (β stays small while the
  reconstructions form, then the prior is enforced);
* ``cyclic`` — cyclical annealing (Fu et al., 2019): every ``anneal_epochs`` epochs β restarts
  at ``beta_start``, rises linearly over half the cycle and holds ``beta_max`` for the rest,
  which fights KL vanishing by letting the encoder re-learn to use the latent each cycle.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import optax

from restore_cli.errors import UsageError

BETA_SHAPES = ("linear-step", "cosine", "sigmoid", "cyclic")
OPTIMIZERS = ("adam", "adamax", "sgd", "adamw")
_SIGMOID_SHARPNESS = 10.0  # logistic slope over the run: 1/(1+e^5) = 0.7 % of the rise at each end

BetaSchedule = Callable[[float], float]


def beta_schedule(
    shape: str, beta_start: float, beta_max: float, epochs: float, anneal_epochs: float
) -> BetaSchedule:
    """β as a function of the fractional epoch, for one of :data:`BETA_SHAPES`."""
    if shape not in BETA_SHAPES:
        raise UsageError(f"--beta-schedule: unknown shape {shape!r} (choose from {', '.join(BETA_SHAPES)})")
    if beta_start < 0 or beta_max < 0:
        raise UsageError("--beta-start and --beta-max must not be negative")
    if anneal_epochs <= 0 or epochs <= 0:
        raise UsageError("--anneal-epochs and --epochs must be positive")
    span = beta_max - beta_start
    if shape == "linear-step":
        raises = max(1, math.ceil(epochs / anneal_epochs) - 1)  # raises that happen inside the run
        ramp = optax.linear_schedule(beta_start, beta_max, transition_steps=raises)
        return lambda epoch: float(ramp(min(raises, math.floor(epoch / anneal_epochs))))
    if shape == "cosine":
        fall = optax.cosine_decay_schedule(1.0, decay_steps=max(1, round(epochs * 1000)))
        return lambda epoch: beta_max - span * float(fall(round(epoch * 1000)))
    if shape == "sigmoid":
        low, high = _logistic(-0.5 * _SIGMOID_SHARPNESS), _logistic(0.5 * _SIGMOID_SHARPNESS)
        return lambda epoch: beta_start + span * (
            _logistic(_SIGMOID_SHARPNESS * (min(epoch, epochs) / epochs - 0.5)) - low
        ) / (high - low)
    half = max(1, round(anneal_epochs * 500))  # half a cycle, in thousandths of an epoch
    rise = optax.linear_schedule(beta_start, beta_max, transition_steps=half)
    return lambda epoch: float(rise(round((epoch % anneal_epochs) * 1000)))


def _logistic(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def lr_schedule(lr: float, total_steps: int, warmup_steps: int = 0, decay: str = "cosine") -> optax.Schedule:
    """``constant`` (the original's fixed 1e-6) or linear warm-up then cosine decay to 1 % of ``lr``."""
    if lr <= 0:
        raise UsageError(f"--lr must be positive, got {lr}")
    if decay == "constant":
        return optax.constant_schedule(lr)
    warmup = min(max(0, warmup_steps), max(0, total_steps - 1))
    return optax.warmup_cosine_decay_schedule(
        init_value=lr * 0.01 if warmup else lr, peak_value=lr, warmup_steps=warmup,
        decay_steps=max(total_steps, warmup + 1), end_value=lr * 0.01,
    )


def make_optimizer(name: str, schedule: optax.Schedule, clip_norm: float | None = None) -> optax.GradientTransformation:
    """One of :data:`OPTIMIZERS` (optax), optionally behind global-norm gradient clipping."""
    makers = {
        "adam": lambda: optax.adam(schedule),
        "adamax": lambda: optax.adamax(schedule),
        "sgd": lambda: optax.sgd(schedule, momentum=0.9),
        "adamw": lambda: optax.adamw(schedule, weight_decay=1e-4),
    }
    if name not in makers:
        raise UsageError(f"--optimizer: unknown optimizer {name!r} (choose from {', '.join(OPTIMIZERS)})")
    tx = makers[name]()
    return optax.chain(optax.clip_by_global_norm(clip_norm), tx) if clip_norm else tx
