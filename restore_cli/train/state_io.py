"""Training state on disk: model + optimizer + step in one safetensors file, for exact ``--resume``.

The file uses the ordinary checkpoint container (:mod:`restore_cli.models.checkpoint`) with
``kind = "train-state"``: model variables under ``model/...``, optimizer variables (Adam
moments, step and schedule counters) under ``opt/...``, and a ``resume`` header with the
step, the best validation value so far and the settings a resumed run must share.
No data-loader position is stored: batches are a pure function of (seed, step).
"""

from __future__ import annotations

import json
import platform
from typing import Any

import jax
import numpy as np
from flax import nnx

from restore_cli.errors import CheckpointError, UsageError
from restore_cli.io import display_path
from restore_cli.models.checkpoint import read_checkpoint, save_checkpoint

RESUME_KIND = "train-state"


def _name(path: tuple) -> str:
    return "/".join(map(str, path))


def state_arrays(obj: Any) -> dict[str, np.ndarray]:
    """Every variable of a module or optimizer as host arrays (PRNG keys stored as their raw data)."""
    out = {}
    for path, var in nnx.to_flat_state(nnx.state(obj)):
        value = var.get_value()
        if jax.dtypes.issubdtype(value.dtype, jax.dtypes.prng_key):
            value = jax.random.key_data(value)
        out[_name(path)] = np.asarray(value)
    return out


def load_state(obj: Any, arrays: dict[str, np.ndarray], source: str) -> None:
    """Inverse of :func:`state_arrays`; names and shapes must match (CheckpointError otherwise)."""
    flat = nnx.to_flat_state(nnx.state(obj))
    if {_name(p) for p, _ in flat} != arrays.keys():
        raise CheckpointError(f"{source}: saved training state does not match this model/optimizer")
    for path, var in flat:
        current, value = var.get_value(), arrays[_name(path)]
        if jax.dtypes.issubdtype(current.dtype, jax.dtypes.prng_key):
            var.set_value(jax.random.wrap_key_data(value))
            continue
        if current.shape == () and value.shape == (1,):  # safetensors stores scalars as (1,)
            value = value.reshape(())
        if value.shape != current.shape:
            raise CheckpointError(f"{source}: {_name(path)} has shape {value.shape}, expected {current.shape}")
        # Onto the devices the variable is on now: a model replicated over several devices
        # (restore_cli.train.sharding) stays replicated when a resumed run loads into it.
        var.set_value(jax.device_put(np.asarray(value, dtype=current.dtype), current.sharding))
    nnx.update(obj, nnx.from_flat_state(flat))


def save_train_state(path, model: nnx.Module, optimizer: nnx.Optimizer, info: dict[str, Any]) -> None:
    """Write model + optimizer + ``info`` (step, best, settings key, ...) atomically to ``path``."""
    arrays = {f"model/{k}": v for k, v in state_arrays(model).items()}
    arrays.update({f"opt/{k}": v for k, v in state_arrays(optimizer).items()})
    save_checkpoint(path, arrays, {"kind": RESUME_KIND, "resume": info})


def load_train_state(path, model: nnx.Module, optimizer: nnx.Optimizer, resume_key: dict[str, Any]) -> dict[str, Any]:
    """Load what :func:`save_train_state` wrote into ``model`` and ``optimizer``; return its ``info``.

    ``resume_key`` must equal the stored one (same data, model and optimiser settings), else
    UsageError naming the settings that differ: resuming a different run is never silent.
    """
    name = display_path(path)
    if not path.is_file():
        raise UsageError(f"--resume: {name} does not exist (nothing to resume)")
    arrays, header = read_checkpoint(path)
    info = header.get("resume")
    if header.get("kind") != RESUME_KIND or not isinstance(info, dict):
        raise CheckpointError(f"{name}: not a training-state checkpoint")
    saved = json.loads(json.dumps(info.get("key") or {}))
    wanted = json.loads(json.dumps(resume_key))
    if saved != wanted:
        diff = sorted(k for k in set(saved) | set(wanted) if saved.get(k) != wanted.get(k))
        if set(saved) != set(wanted):  # not the same settings at all: the other trainer's run (or version's)
            shown = ", ".join(diff[:5]) + (f" and {len(diff) - 5} more" if len(diff) > 5 else "")
            raise UsageError(f"--resume: {name} holds another kind of run: its settings are not this command's "
                             f"({shown})")
        raise UsageError(f"--resume: {name} was made with different settings ({', '.join(diff)})")
    load_state(model, {k[6:]: v for k, v in arrays.items() if k.startswith("model/")}, name)
    load_state(optimizer, {k[4:]: v for k, v in arrays.items() if k.startswith("opt/")}, name)
    return info


def machine() -> dict[str, str]:
    """Where a checkpoint was trained (stored in its header)."""
    devices = jax.devices()
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "jax_devices": ", ".join(str(d) for d in devices),
        "device_kind": devices[0].device_kind,  # e.g. 'NVIDIA H200'; 'cpu' on a CPU
    }
