"""The data-parallel train step equals the single-device one (2 forced CPU devices, in a subprocess).

XLA reads ``--xla_force_host_platform_device_count`` once, when jax starts, so the check runs in
a fresh interpreter with the flag set; the parent test process keeps its single device.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import json
import jax, numpy as np, optax
from flax import nnx
from restore_cli.models.vae import build_model
from restore_cli.train.sharding import data_mesh, replicate
from restore_cli.train.vae_config import resolve
from restore_cli.train.vae_steps import LossConfig, make_step

assert len(jax.devices()) == 2, jax.devices()
cfg = resolve("tiny", "translation")
rng = np.random.default_rng(0)
batch = {k: rng.random((4, 32, 32, 1), dtype=np.float32) for k in ("degraded", "clean", "real")}
batch["mask"] = (rng.random((4, 32, 32, 1)) < 0.1).astype(np.float32)

def run(mesh):
    model = build_model(cfg.model_config().to_dict(), seed=0)
    optimizer = nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)
    if mesh is not None:
        replicate(model, mesh)
        replicate(optimizer, mesh)
    step = make_step(LossConfig(arch="translation", ssim_weight=0.1), mesh)
    # phase 0 samples latents and matches batch statistics; phase 1 is the end-to-end path
    losses = [float(step(model, optimizer, {**batch, "beta": np.float32(0.01), "phase": p})["loss"]) for p in (0, 1)]
    params = {"/".join(map(str, k)): np.asarray(v.get_value()) for k, v in nnx.to_flat_state(nnx.state(model, nnx.Param))}
    devices = {len(v.get_value().sharding.device_set) for _, v in nnx.to_flat_state(nnx.state(model, nnx.Param))}
    return losses, params, devices

single, sharded = run(None), run(data_mesh())
diff = max(float(np.max(np.abs(single[1][k] - sharded[1][k]))) for k in single[1])
moved = max(float(np.max(np.abs(single[1][k] - build_params))) for k, build_params in
            {"/".join(map(str, k)): np.asarray(v.get_value()) for k, v in
             nnx.to_flat_state(nnx.state(build_model(cfg.model_config().to_dict(), seed=0), nnx.Param))}.items())
print(json.dumps({"single": single[0], "sharded": sharded[0], "param_diff": diff, "moved": moved,
                  "devices_single": sorted(single[2]), "devices_sharded": sorted(sharded[2])}))
"""


def run_on_two_devices(script: str) -> dict:
    """Run ``script`` in a fresh interpreter that sees two CPU devices; its last stdout line, as JSON."""
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_sharded_step_matches_single_device_step():
    result = run_on_two_devices(SCRIPT)
    assert result["devices_sharded"] == [2] and result["devices_single"] == [1]  # really replicated over 2
    for a, b in zip(result["single"], result["sharded"]):
        assert abs(a - b) <= 1e-5 * max(1.0, abs(a)), result
    assert result["moved"] > 1e-4  # the steps changed the weights...
    assert result["param_diff"] < 1e-5, result  # ...identically on one device and on two


MASK_SCRIPT = r"""
import dataclasses, json
import jax, jax.numpy as jnp, numpy as np
from flax import nnx
from restore_cli.models.unet import UNetConfig, new_unet
from restore_cli.train.loop import make_train_step
from restore_cli.train.mask import MASK_PRESETS, make_optimizer, mask_loss
from restore_cli.train.sharding import data_mesh, replicate, split_batches

assert len(jax.devices()) == 2, jax.devices()
config = dataclasses.replace(MASK_PRESETS["tiny"], arch=UNetConfig(widths=(8, 16)), batch=4, crop=32, lr=1e-2, warmup=0)
rng = np.random.default_rng(0)
batches = [{"degraded": rng.random((4, 32, 32, 1), dtype=np.float32),
            "mask": (rng.random((4, 32, 32, 1)) < 0.05).astype(np.float32)} for _ in range(2)]

def run(mesh, distill):
    cfg = dataclasses.replace(config, distill_views=4 if distill else 0, distill_share=0.5,
                              init="teacher.safetensors" if distill else None)  # only named: --init needs a path
    model = new_unet(cfg.arch, 0)
    teacher = None
    if distill:  # a frozen copy in buffers of its own, as train_mask makes it
        teacher = nnx.clone(model)
        nnx.update(teacher, jax.tree.map(jnp.copy, nnx.state(teacher)))
    optimizer = make_optimizer(model, cfg, 10)
    step = make_train_step(mask_loss(cfg, teacher))
    if mesh is not None:
        for obj in (model, optimizer) if teacher is None else (model, optimizer, teacher):
            replicate(obj, mesh)
        step = split_batches(step, mesh)
    losses = [float(step(model, optimizer, b)["loss"]) for b in batches]
    state = nnx.to_flat_state(nnx.state(model, nnx.Param))
    params = {"/".join(map(str, k)): np.asarray(v.get_value()) for k, v in state}
    devices = sorted({len(v.get_value().sharding.device_set) for _, v in state})
    return losses, params, devices, step.traced.traces

def resumed_devices():
    # A resumed run loads its saved state into a model and optimizer already replicated: it must stay so.
    import tempfile, pathlib
    from restore_cli.train.state_io import load_train_state, save_train_state
    model = new_unet(config.arch, 0)
    optimizer = make_optimizer(model, config, 10)
    path = pathlib.Path(tempfile.mkdtemp()) / "state.safetensors"
    save_train_state(path, model, optimizer, {"step": 0, "key": {}})
    mesh = data_mesh()
    replicate(model, mesh)
    replicate(optimizer, mesh)
    load_train_state(path, model, optimizer, {})
    leaves = jax.tree.leaves(nnx.state(model)) + jax.tree.leaves(nnx.state(optimizer))
    return sorted({len(x.sharding.device_set) for x in leaves})

out = {"resumed_devices": resumed_devices()}
for distill in (False, True):
    single, sharded = run(None, distill), run(data_mesh(), distill)
    out[str(distill)] = {"single": single[0], "sharded": sharded[0], "devices": [single[2], sharded[2]],
                         "traces": sharded[3],
                         "param_diff": max(float(np.max(np.abs(single[1][k] - sharded[1][k]))) for k in single[1])}
print(json.dumps(out))
"""


def test_mask_trainer_sharded_step_matches_single_device_step():
    """train-mask's step split over 2 devices (split_batches) trains what one device trains, teacher or not."""
    results = run_on_two_devices(MASK_SCRIPT)
    assert results.pop("resumed_devices") == [2]  # --resume keeps the state on both devices
    for distill, result in results.items():
        assert result["devices"] == [[1], [2]], (distill, result)  # replicated over both devices
        assert result["traces"] == 1  # the wrapper keeps the jitted step's trace count, compiled once
        for a, b in zip(result["single"], result["sharded"]):
            assert abs(a - b) <= 1e-5 * max(1.0, abs(a)), (distill, result)
        assert result["single"][1] < result["single"][0]  # a real step: the loss fell
        assert result["param_diff"] < 1e-5, (distill, result)
