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


def test_sharded_step_matches_single_device_step():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["devices_sharded"] == [2] and result["devices_single"] == [1]  # really replicated over 2
    for a, b in zip(result["single"], result["sharded"]):
        assert abs(a - b) <= 1e-5 * max(1.0, abs(a)), result
    assert result["moved"] > 1e-4  # the steps changed the weights...
    assert result["param_diff"] < 1e-5, result  # ...identically on one device and on two
