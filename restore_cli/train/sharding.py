"""Data-parallel training over every device with ``jax.sharding``: the step itself is unchanged.

How it works: a 1-D :class:`~jax.sharding.Mesh` named ``data`` spans ``jax.devices()``. Model
and optimizer state are *replicated* (``PartitionSpec()``), batches are *split on axis 0*
(``PartitionSpec('data')``). The ordinary ``nnx.jit`` train step then compiles to an SPMD
program: each device runs the forward/backward pass on its slice of the batch and XLA inserts
the all-reduce that the batch-mean loss implies, so updated parameters stay replicated and equal
to the single-device result (up to float summation order). There is no ``pmap`` and no
hand-written collective, so the same code runs on 1 CPU, 8 GPUs or a TPU slice.

On one machine with one device (the usual CPU case) the mesh has one device and placement is a
no-op. To test the multi-device path on a CPU, start Python with
``XLA_FLAGS=--xla_force_host_platform_device_count=2`` (it must be set before jax is imported).

``train-vae`` shards inside its own step (:func:`restore_cli.train.vae_steps.make_step`);
``train-mask`` wraps its jitted step with :func:`split_batches`. Both log the device count.

Multi-host (several machines, each with its accelerators) is documented here, not wired into
either trainer, and untested: one GPU trains the shipped models in minutes, so nothing here has
needed more. What it takes, in order: (1) call ``jax.distributed.initialize()`` (coordinator
address, process count and id from the arguments, the ``JAX_COORDINATOR_ADDRESS`` /
``JAX_NUM_PROCESSES`` / ``JAX_PROCESS_ID`` environment, or a detected SLURM / Open MPI / TPU
cluster) before anything else touches jax, and run the same command on every host;
``jax.devices()`` then lists every host's devices and :func:`data_mesh` spans them. (2) Each host
keeps only its rows of every batch: the batches are drawn from the step number, so every host
can draw the same one and keep rows ``[i * B / P, (i + 1) * B / P)`` (i = ``jax.process_index()``,
P = ``jax.process_count()``); :func:`shard_batch` already assembles the global array from such
local pieces (``jax.make_array_from_process_local_data``) and checks that B splits evenly. (3)
Validation must feed global arrays too (the evaluator passes host arrays, which a jitted function
cannot mix with parameters on other hosts' devices), and only process 0 may write checkpoints,
metrics and the stdout line (``loop.fit`` writes from every process today).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from restore_cli.errors import UsageError

AXIS = "data"


def data_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh over ``devices`` (default: every device of every process)."""
    devices = list(devices if devices is not None else jax.devices())
    return Mesh(np.array(devices), (AXIS,))


def replicate(obj: object, mesh: Mesh) -> None:
    """Place every array of an nnx object (model, optimizer) on all devices of ``mesh``, in place."""
    state = nnx.state(obj)
    nnx.update(obj, jax.device_put(state, NamedSharding(mesh, PartitionSpec())))


def check_batch_size(batch_size: int, mesh: Mesh) -> None:
    """Every device must get the same number of samples."""
    devices = mesh.devices.size
    if batch_size % devices:
        raise UsageError(f"--batch {batch_size} must be a multiple of the {devices} devices it is split across")


def split_batches(step: Callable, mesh: Mesh) -> Callable:
    """``step(model, optimizer, batch)`` fed with each host ``batch`` split across ``mesh``.

    For a trainer whose jitted step takes the batch as drawn (``train-mask``): the model and
    optimizer must be :func:`replicate`-d first. Attributes of ``step`` (``traced``) carry over.
    """

    def sharded(model: nnx.Module, optimizer: nnx.Optimizer, batch: dict[str, np.ndarray]):
        return step(model, optimizer, shard_batch(batch, mesh))

    sharded.__dict__.update(step.__dict__)
    return sharded


def shard_batch(batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
    """Host arrays (this process's samples) -> global arrays split on axis 0 across the mesh."""
    sharding = NamedSharding(mesh, PartitionSpec(AXIS))
    if mesh.devices.size == 1:
        return {k: jax.device_put(v, sharding) for k, v in batch.items()}
    check_batch_size(next(iter(batch.values())).shape[0] * jax.process_count(), mesh)
    return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in batch.items()}
