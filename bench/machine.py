"""Describe the machine a benchmark ran on, so every number is printed with its context."""

from __future__ import annotations

import datetime as dt
import os
import platform
from importlib import metadata


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe() -> dict:
    import jax

    versions = {}
    for name in ("jax", "jaxlib", "flax", "optax", "numpy", "scikit-image", "bm3d"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        import psutil

        memory_gib = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        memory_gib = None
    return {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cores": cores,
        "memory_gib": memory_gib,
        "device": ", ".join(f"{d.platform}:{d.device_kind}" for d in jax.devices()),
        "python": platform.python_version(),
        "versions": versions,
    }


def one_line(info: dict) -> str:
    return f"{info['cpu']}, {info['cores']} cores, {info['memory_gib']} GiB, {info['device']}, {info['date']}"
