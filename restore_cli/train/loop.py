"""The training loop every trainer shares (mask U-Net, VAE): step, log, evaluate, checkpoint, resume.

A trainer supplies four things and calls :func:`fit`:

* ``train_step`` - from :func:`make_train_step` (``loss_fn(model, batch, step) -> (loss, aux)``),
  an ``nnx.jit`` function compiled once because batches have fixed shapes;
* ``make_batch(step) -> batch`` - a pure function of the step (see :mod:`restore_cli.train.data`),
  run ``LoopConfig.prefetch`` batches ahead in a thread, or in ``LoopConfig.workers`` forked
  processes, so it must stay numpy: a forked child that calls JAX deadlocks (the step itself
  places the batch on devices). Per-step host scalars that need JAX (an optax beta schedule)
  come from the optional ``step_values(step) -> dict``, called in the training process and
  merged into the batch; 0-d float32 arrays there are traced (no recompiles);
* ``evaluate(model) -> {"val_...": float}`` - host floats; ``LoopConfig.best_metric`` names the
  one that picks the best checkpoint;
* ``header(eval_metrics) -> dict`` - the inference checkpoint's header (kind, arch, extras).

Files, for a checkpoint ``run/mask.safetensors``:

* ``run/mask.safetensors`` - the best model so far (by ``best_metric``), inference format;
* ``run/mask.last.safetensors`` - model + optimizer state + step, every ``checkpoint_every``
  steps; ``resume=True`` continues from it exactly (batches depend only on the step, and
  randomness inside a step should come from ``jax.random.fold_in(key, step)``);
* ``run/mask.metrics.jsonl`` - one row per log interval and per evaluation;
* ``run/mask.curves.png`` - train loss and validation metrics, redrawn at each evaluation.

The loss only reaches the host every ``log_every`` steps (and before every checkpoint), so
the device never waits on Python; a non-finite loss found then stops training with
:class:`TrainingDiverged` and the last checkpoint on disk - written only after such a check -
stays the last good one.

Ctrl-C or SIGTERM stops training at the step it lands on and writes that step's resumable
state (:mod:`restore_cli.train.interrupts` explains why the step's dispatch holds them); no
validation runs then, so the best checkpoint stays the last evaluated one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import nnx

from restore_cli.errors import RestoreError, UsageError
from restore_cli.io import check_output_files, display_path, file_stamp, write_bytes_atomic
from restore_cli.log import progress_enabled, stderr_console
from restore_cli.models.checkpoint import model_arrays, read_header, save_checkpoint
from restore_cli.train.data import Batch, Prefetcher
from restore_cli.train.interrupts import HeldSignals
from restore_cli.train.progress import MetricsLog, Progress, json_value, reset_metrics
from restore_cli.train.state_io import load_train_state, machine, save_train_state, state_arrays

log = logging.getLogger("restore.train")
LossFn = Callable[[nnx.Module, dict[str, jax.Array], jax.Array], tuple[jax.Array, dict[str, jax.Array]]]


class TrainingDiverged(RestoreError):
    """The loss became NaN or infinite; the message names the step and the last good checkpoint."""


@dataclasses.dataclass(frozen=True)
class LoopConfig:
    steps: int  # stop after this many optimizer steps in total (a resumed run counts the earlier ones)
    log_every: int = 50
    eval_every: int = 250
    checkpoint_every: int = 250
    best_metric: str = "val_f1"
    best_mode: str = "max"  # "max" or "min"
    prefetch: int = 3
    workers: int = 0  # processes drawing batches (prefetch.py); 0 = one background thread
    #: Stop cleanly (evaluate, write the resumable state, and the best checkpoint if this evaluation
    #: beats it) at the first step that ends this many seconds after the call started; ``resume=True`` later continues the same run, schedule and all.
    time_limit_s: float | None = None
    #: Stop the same way at this step of a longer schedule: a time-limited run made reproducible
    #: (``make checkpoints`` replays a GPU stage that ended at its time limit).
    stop_at: int | None = None


@dataclasses.dataclass(frozen=True)
class RunPaths:
    """Where a run writes, all derived from the requested checkpoint path."""

    checkpoint: Path

    def _beside(self, suffix: str) -> Path:
        return self.checkpoint.with_name(self.checkpoint.stem + suffix)

    @property
    def last(self) -> Path:
        return self._beside(".last.safetensors")

    @property
    def metrics(self) -> Path:
        return self._beside(".metrics.jsonl")

    @property
    def curves(self) -> Path:
        return self._beside(".curves.png")

    @property
    def steps(self) -> Path:
        """Every step's losses (train-vae's :class:`~restore_cli.train.vae.StepRecorder`)."""
        return self._beside(".steps.jsonl")

    def check(self, resume: bool, kind: str | None = None) -> None:
        """Before any training: every file of the run can be written (before, a bad ``-o`` failed with
        a traceback at the first checkpoint, the steps up to it lost), ``-o`` does not name a file that
        is not this trainer's checkpoint (a photo, or another kind of model, was replaced without a
        word), and a fresh run says what earlier state it replaces."""
        check_output_files([self.checkpoint, self.last, self.metrics, self.curves], "-o names the checkpoint file")
        if kind is not None and self.checkpoint.is_file():
            try:
                found = read_header(self.checkpoint).get("kind")
                what = None if found == kind else f"a {found!r} checkpoint, not {kind!r}"
            except RestoreError:
                what = "not a restore checkpoint"
            if what is not None:
                raise UsageError(f"-o {display_path(self.checkpoint)}: exists and is {what}; refusing to replace "
                                 "it (choose another name, or remove it first)")
        if not resume and self.last.is_file():
            try:
                held = f" at step {read_header(self.last)['resume']['step']}"
            except (RestoreError, KeyError, TypeError):
                held = ""
            log.warning("%s holds an earlier run's state%s: this run starts afresh and replaces it "
                        "(--resume continues that one)", display_path(self.last), held)


@dataclasses.dataclass
class FitResult:
    step: int
    best: float | None
    best_step: int | None
    last_eval: dict[str, float]
    wall_s: float
    steps_per_s: float  # after compilation
    compile_s: float  # first step, compilation included


def count_traces(fn: Callable) -> Callable:
    """Wrap ``fn`` so ``wrapper.traces`` counts how often its Python body runs (= traces under jit)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        wrapper.traces += 1
        return fn(*args, **kwargs)

    wrapper.traces = 0
    return wrapper


def make_train_step(loss_fn: LossFn) -> Callable:
    """``step(model, optimizer, batch) -> {"loss": ..., **aux}``, jitted; ``step.traces`` counts compiles.

    ``loss_fn(model, batch, step)`` gets the optimizer's step counter (a traced uint32) so that
    stochastic losses can derive their key with ``fold_in`` and stay exactly resumable.

    The model and optimizer are donated: their buffers are updated in place instead of the step
    allocating a second copy of the weights and Adam moments (on a GPU, half the state's memory;
    here the ``cr6`` ``simple`` step, 300 M parameters at batch 32, went from 17.7-21.3 to
    14.7-16.6 s; the small models' steps are unchanged). Nothing may keep the old arrays across a
    step: a frozen copy needs buffers of its own (the distillation teacher in :mod:`.mask`).
    """

    @count_traces
    def step(model: nnx.Module, optimizer: nnx.Optimizer, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
        grad_fn = nnx.value_and_grad(loss_fn, has_aux=True)
        (loss, aux), grads = grad_fn(model, batch, optimizer.step[...])
        optimizer.update(model, grads)
        return {"loss": loss, **aux}

    jitted = nnx.jit(step, donate_argnames=("model", "optimizer"))
    jitted.traced = step  # type: ignore[attr-defined]
    return jitted


def _better(value: float, best: float | None, mode: str) -> bool:
    if not math.isfinite(value):
        return False
    return best is None or (value > best if mode == "max" else value < best)


def fit(model: nnx.Module, optimizer: nnx.Optimizer, train_step: Callable, make_batch: Callable[[int], Batch],
        config: LoopConfig, paths: RunPaths, on_stop: Callable[[], None] | None = None, **options: Any) -> FitResult:
    """Train until ``config.steps`` (see :func:`_fit`); ``on_stop()`` runs when training ends, for any
    reason (train-vae writes its last per-step rows there). A run that stops before it has written a
    checkpoint or state of its own (diverged, stopped while compiling) then puts back the metrics,
    curves and step rows it found: a failed fresh run emptied the history of the checkpoint it left."""
    kept = {path: path.read_bytes() if path.is_file() else None for path in (paths.metrics, paths.curves, paths.steps)}
    written = {path: file_stamp(path) for path in (paths.checkpoint, paths.last)}
    try:
        try:
            return _fit(model, optimizer, train_step, make_batch, config, paths, **options)
        finally:
            if on_stop is not None:
                on_stop()
    except BaseException:
        if all(file_stamp(path) == key for path, key in written.items()):
            for path, content in kept.items():
                with contextlib.suppress(OSError):
                    if content is None:
                        path.unlink(missing_ok=True)
                    elif not path.is_file() or path.read_bytes() != content:
                        write_bytes_atomic(path, content)
        raise


def _fit(
    model: nnx.Module,
    optimizer: nnx.Optimizer,
    train_step: Callable,
    make_batch: Callable[[int], Batch],
    config: LoopConfig,
    paths: RunPaths,
    *,
    header: Callable[[dict[str, float]], dict[str, Any]],
    evaluate: Callable[[nnx.Module], dict[str, float]] | None = None,
    resume_key: dict[str, Any] | None = None,
    resume: bool = False,
    step_values: Callable[[int], dict[str, Any]] | None = None,
) -> FitResult:
    """Train until ``config.steps``; see the module docstring for what is written where."""
    from restore_cli.report.curves import plot_curves  # matplotlib: imported only when training

    resume_key = resume_key or {}
    start, best, best_step, wall_before = 0, None, None, 0.0
    if resume:
        info = load_train_state(paths.last, model, optimizer, resume_key)
        start, best, best_step, wall_before = info["step"], info.get("best"), info.get("best_step"), info.get("wall_s", 0.0)
        log.info("resuming %s at step %d of %d", display_path(paths.last), start, config.steps)
    paths.checkpoint.parent.mkdir(parents=True, exist_ok=True)
    reset_metrics(paths.metrics, start if resume else None)
    recorder = MetricsLog(paths.metrics)
    last_good = (paths.last, start) if resume else None
    pending: list[dict[str, jax.Array]] = []
    last_eval: dict[str, float] = {}
    t0 = time.perf_counter()
    t_compiled, step_compiled = None, start
    t_window, window_start = t0, start

    def flush(step: int) -> dict[str, float]:
        """Bring pending losses to the host, check them, write a row. ``step`` = steps done."""
        nonlocal pending, t_window, window_start
        if not pending:
            return {}
        host = jax.device_get(pending)
        first = step - len(host) + 1
        for offset, row in enumerate(host):
            bad = ", ".join(f"{k}={float(v)}" for k, v in row.items() if not np.isfinite(v))
            if bad:
                raise _diverged(first + offset, bad, last_good)
        means = {k: float(np.mean([r[k] for r in host])) for k in host[0]}
        now = time.perf_counter()
        rate = (step - window_start) / max(now - t_window, 1e-9)
        t_window, window_start, pending = now, step, []
        recorder.write({"step": step, **means, "steps_per_s": rate, "wall_s": wall_before + now - t0})
        return {**means, "steps_per_s": rate}

    if config.stop_at is not None and config.stop_at > config.steps:
        log.warning("--stop-at %d is past the run's last step (%d): it runs to the end", config.stop_at, config.steps)
    progress = Progress(config.steps, start, enabled=progress_enabled(), console=stderr_console)
    step, consistent = start, True  # consistent: model and optimizer are not half-way through a step
    try:
        with Prefetcher(make_batch, start, config.steps, config.prefetch, config.workers) as batches, progress:
            for step_index, batch in batches:
                if step_values is not None:
                    batch = {**batch, **step_values(step_index)}
                if t_compiled is None:  # compiling: not held, so Ctrl-C stays prompt (see interrupts.py)
                    consistent = False
                    pending.append(train_step(model, optimizer, batch))
                    step, consistent = step_index + 1, True
                else:
                    with HeldSignals():
                        pending.append(train_step(model, optimizer, batch))
                        step = step_index + 1
                if t_compiled is None:  # one host sync, once: separates compile time from step time
                    jax.block_until_ready(pending[-1])
                    t_compiled, step_compiled = time.perf_counter(), step
                    t_window, window_start = t_compiled, step
                    log.debug("first step (compilation included) took %.1f s", t_compiled - t0)
                out_of_time = config.time_limit_s is not None and time.perf_counter() - t0 >= config.time_limit_s
                halted = out_of_time or (config.stop_at is not None and step >= config.stop_at)
                final = step == config.steps or halted
                do_eval = evaluate is not None and (step % config.eval_every == 0 or final)
                do_ckpt = step % config.checkpoint_every == 0 or final
                if step % config.log_every == 0 or final or do_eval or do_ckpt:
                    shown = flush(step)
                    progress.update(step, shown)
                    if shown and not progress.enabled:
                        log.info("%s", progress.line(step, shown))
                else:
                    progress.update(step, None)
                if do_eval:
                    last_eval = evaluate(model)
                    recorder.write({"step": step, **last_eval})
                    value = last_eval.get(config.best_metric, float("nan"))
                    if _better(value, best, config.best_mode):
                        best, best_step = value, step
                        _save_best(paths, model, header, last_eval, step, wall_before + time.perf_counter() - t0, last_good)
                    log.info("step %d: %s", step, ", ".join(f"{k} {v:.4g}" for k, v in last_eval.items()))
                    plot_curves(recorder.rows, paths.curves, title=paths.checkpoint.name)
                if do_ckpt:
                    wall = wall_before + time.perf_counter() - t0
                    if evaluate is None:
                        _save_best(paths, model, header, {}, step, wall, last_good)
                    _check_finite(state_arrays(model), step, last_good)
                    info = {"step": step, "best": best, "best_step": best_step, "wall_s": wall, "key": resume_key}
                    save_train_state(paths.last, model, optimizer, info)
                    last_good = (paths.last, step)
                if do_eval or do_ckpt:
                    t_window = time.perf_counter()  # steps/s counts training only
                if halted and step < config.steps:
                    log.info("%s at step %d of %d; --resume continues from here",
                             "time limit reached" if out_of_time else "--stop-at reached", step, config.steps)
                    break
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (restore_cli.cli.Terminated)
        if consistent and step > (last_good[1] if last_good else start):
            _save_interrupted(paths, model, optimizer, step, flush, last_good,
                              {"best": best, "best_step": best_step, "key": resume_key,
                               "wall_s": wall_before + time.perf_counter() - t0})
        elif last_good is not None or start > 0:  # nothing newer to write: say where the run stands
            path, kept = last_good or (paths.last, start)
            log.warning("stopped: %s holds step %d; --resume continues from there", display_path(path), kept)
        raise
    now = time.perf_counter()
    rate = (step - step_compiled) / (now - t_compiled) if t_compiled and step > step_compiled else 0.0
    return FitResult(step, best, best_step, last_eval, wall_before + now - t0, rate,
                     (t_compiled - t0) if t_compiled else 0.0)


def lineage(path: str | Path, header: dict[str, Any]) -> dict[str, Any]:
    """What a fine-tuned checkpoint records about the one it started from (``training.init``).

    Steps, wall time, machine and metrics of the starting checkpoint, and its own ``init`` in
    turn, so the total cost of a model trained in stages stays on record after the intermediate
    files are gone (``make bench`` adds the stages up).
    """
    training = header.get("training", {}) or {}
    out = {"path": display_path(Path(path)), "step": training.get("step"), "wall_s": training.get("wall_s"),
           "machine": training.get("machine"), "metrics": header.get("metrics")}
    if training.get("init"):
        out["init"] = training["init"]
    return out


def _diverged(step: int, what: str, last_good: tuple[Path, int] | None) -> TrainingDiverged:
    where = (f"the last good checkpoint is {display_path(last_good[0])} (step {last_good[1]})"
             if last_good else "no checkpoint was written")
    return TrainingDiverged(f"training diverged at step {step}: {what} (learning rate too high, or bad data?); {where}")


def _check_finite(arrays: dict[str, np.ndarray], step: int, last_good: tuple[Path, int] | None) -> None:
    """A checkpoint is only written from finite weights (a finite loss can still be followed by an inf update)."""
    for name, value in arrays.items():
        if np.issubdtype(value.dtype, np.floating) and not np.isfinite(value).all():
            raise _diverged(step, f"weight {name} is not finite", last_good)


def _save_interrupted(paths: RunPaths, model, optimizer, step: int, flush: Callable[[int], dict],
                      last_good: tuple[Path, int] | None, info: dict[str, Any]) -> None:
    """On Ctrl-C / SIGTERM: the resumable state at ``step`` (its losses checked and logged first).

    Anything that stops the save (a non-finite loss or weight, a full disk) leaves the last
    checkpoint in place and says so; a second Ctrl-C during the atomic write does the same.
    """
    kept = f"{display_path(last_good[0])} keeps step {last_good[1]}" if last_good else "no state was written"
    try:
        flush(step)
        _check_finite(state_arrays(model), step, last_good)
        if int(optimizer.step[...]) != step:  # never expected: the step was dispatched whole or not at all
            raise RestoreError(f"the optimizer counts {int(optimizer.step[...])} steps, the loop {step}")
        save_train_state(paths.last, model, optimizer, {"step": step, **info})
    except (RestoreError, OSError) as exc:
        log.warning("stopped at step %d; its state was not written (%s); %s", step, exc, kept)
        return
    log.warning("stopped at step %d: state written to %s; --resume continues from there", step,
                display_path(paths.last))


def _save_best(paths: RunPaths, model, header: Callable, metrics: dict, step: int, wall_s: float,
               last_good: tuple[Path, int] | None) -> None:
    arrays = model_arrays(model)
    _check_finite(arrays, step, last_good)
    head = header(metrics)
    training = dict(head.get("training", {}))
    training.update(step=step, wall_s=round(wall_s, 2), machine=machine())
    metrics = {k: json_value(v) for k, v in metrics.items()}
    save_checkpoint(paths.checkpoint, arrays, {**head, "training": training, "metrics": metrics})
