"""inference_jit: the same numbers as jax.jit, and a jaxlib without the CPU option still works."""

import jax
import numpy as np

from restore_cli.restoration import inference_jit as module


def _conv(x, kernel):
    return jax.lax.conv_general_dilated(x, kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _inputs():
    rng = np.random.default_rng(0)
    return rng.random((1, 32, 32, 4), np.float32), rng.normal(size=(3, 3, 4, 8)).astype(np.float32)


def test_same_numbers_as_jax_jit():
    x, k = _inputs()
    np.testing.assert_allclose(np.asarray(module.inference_jit(_conv)(x, k)), np.asarray(jax.jit(_conv)(x, k)),
                               rtol=1e-5, atol=1e-5)


def test_unknown_option_falls_back_to_plain_jit(monkeypatch):
    monkeypatch.setattr(module, "CPU_COMPILER_OPTIONS", {"xla_cpu_option_that_does_not_exist": "1"})
    fn = module.inference_jit(_conv)
    x, k = _inputs()
    out = fn(x, k)  # the option is rejected at compile time: the plain jit answers
    assert fn._fast is None
    np.testing.assert_allclose(np.asarray(out), np.asarray(jax.jit(_conv)(x, k)), rtol=1e-5, atol=1e-5)

