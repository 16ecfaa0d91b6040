"""``inference_jit(fn)``: ``jax.jit`` for the restoration networks, with faster XLA:CPU kernels.

XLA:CPU (jaxlib 0.10) hands convolutions fused with their neighbours to YNNPACK by default.
For our U-Nets that is slower than XLA's own (Eigen) convolutions; keeping YNNPACK for the
reductions only (GroupNorm's sums) gave, on 2 CPU cores, interleaved medians, outputs equal up
to float rounding (max |diff| 2e-5):

* the shipped mask U-Net, one 544 px tile: 290-300 -> 250 ms (turning YNNPACK off altogether:
  260-280 ms);
* the shipped restoration network, a noisy 512x512 image (one 544 px tile): 1.24 -> 0.96 s.

Only on the CPU backend (a GPU compiles as before), and only for inference: training keeps the
default (not measured there). A jaxlib that does not know the option raises on the first call;
the plain ``jax.jit`` then takes over, once, for good.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import jax

log = logging.getLogger("restore.restore")

#: XLA:CPU compile options for inference (see the module docstring).
CPU_COMPILER_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_REDUCE"}


class inference_jit:  # noqa: N801 - used like the function it wraps (jax.jit)
    """``jax.jit(fn)`` compiled with :data:`CPU_COMPILER_OPTIONS` on a CPU backend."""

    def __init__(self, fn: Callable[..., Any]):
        self._plain = jax.jit(fn)
        cpu = jax.default_backend() == "cpu"
        self._fast = jax.jit(fn, compiler_options=CPU_COMPILER_OPTIONS) if cpu and CPU_COMPILER_OPTIONS else None

    def __call__(self, *args: Any) -> Any:
        if self._fast is not None:
            try:
                return self._fast(*args)
            except jax.errors.JaxRuntimeError as exc:  # this jaxlib lacks the option
                if not any(name in str(exc) for name in CPU_COMPILER_OPTIONS):
                    raise
                log.debug("XLA:CPU option not available (%s); compiling without it", exc)
                self._fast = None
        return self._plain(*args)
