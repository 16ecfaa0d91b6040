"""Overrides of a :class:`DegradeConfig` by dotted keys, with one validation path for CLI and code.

Keys name a section and a field (``"scratches.width_range"``, ``"noise.prob"``). Values may be
typed or text as a command line gives them; text is parsed by the field's declared type, so
every field of every config can be set without a dedicated parser (the CLI's ``--set``).
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping

from restore_cli.degrade.config import PRESETS, SCRATCH_KINDS, DegradeConfig
from restore_cli.errors import UsageError


def _coerce(key: str, value: object, hint: object) -> object:
    """Turn ``value`` (already typed, or text from a command line) into the field's type."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is tuple:
        items = value
        if isinstance(value, str):
            items = [] if value.strip().lower() in ("", "none") else [v.strip() for v in value.split(",")]
        elif isinstance(value, (int, float)):
            items = [value]
        items = list(items)  # type: ignore[arg-type]
        if args and args[-1] is Ellipsis:
            return tuple(_coerce(key, v, args[0]) for v in items)
        if len(items) == 1 and len(args) == 2:
            items = items * 2  # "25" means the fixed range (25, 25)
        if len(items) != len(args):
            raise UsageError(f"{key}: expected {len(args)} comma-separated values, got {value!r}")
        return tuple(_coerce(key, v, a) for v, a in zip(items, args))
    try:
        if hint is bool:
            if isinstance(value, str):
                text = value.strip().lower()
                if text not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                    raise ValueError(value)
                return text in ("1", "true", "yes", "on")
            return bool(value)
        if hint is int:
            number = float(value)  # type: ignore[arg-type]
            if number != int(number):
                raise ValueError(value)
            return int(number)
        if hint is float:
            return float(value)  # type: ignore[arg-type]
        return str(value)
    except (TypeError, ValueError):
        raise UsageError(f"{key}: {value!r} is not a valid {getattr(hint, '__name__', hint)}") from None


def with_overrides(config: DegradeConfig, overrides: Mapping[str, object]) -> DegradeConfig:
    """A copy of ``config`` with dotted-key overrides applied, then validated (UsageError if invalid).

    Values may be typed or text: ``{"scratches.width_range": "1,4", "noise.prob": "0.5",
    "noise.sigma_range": 25, "scratches.kinds": "linear,cracks", "dust.enabled": False}``.
    """
    sections = {f.name for f in dataclasses.fields(DegradeConfig)}
    for key, value in overrides.items():
        section, _, name = key.partition(".")
        if section not in sections:
            raise UsageError(f"unknown setting {key!r} (sections: {', '.join(sorted(sections))})")
        sub = getattr(config, section)
        hints = typing.get_type_hints(type(sub))
        fields = [f.name for f in dataclasses.fields(sub)]
        if name not in fields:
            raise UsageError(f"unknown setting {key!r} ({section} has: {', '.join(fields)})")
        sub = dataclasses.replace(sub, **{name: _coerce(key, value, hints[name])})
        config = dataclasses.replace(config, **{section: sub})
    validate(config)
    return config


def validate(config: DegradeConfig) -> None:
    """Raise UsageError naming the first setting that makes no sense."""
    for section in dataclasses.fields(config):
        sub = getattr(config, section.name)
        for field in dataclasses.fields(sub):
            key, value = f"{section.name}.{field.name}", getattr(sub, field.name)
            if field.name.endswith("prob") and not 0.0 <= value <= 1.0:
                raise UsageError(f"{key}: a probability must be within 0..1, got {value}")
            if field.name.endswith("_range") and value[0] > value[1]:
                raise UsageError(f"{key}: low end {value[0]} is above high end {value[1]}")
            if field.name in sub._limits:
                low, high = sub._limits[field.name]
                for v in value if isinstance(value, tuple) else (value,):
                    if not low <= v <= high:
                        raise UsageError(f"{key}: {v} is outside the allowed {low}..{high}")
    unknown = [k for k in config.scratches.kinds if k not in SCRATCH_KINDS]
    if unknown:
        raise UsageError(f"scratches.kinds: unknown kind {unknown[0]!r} (choose from {', '.join(SCRATCH_KINDS)})")


def from_preset(preset: str, overrides: Mapping[str, object] = (), settings: list[str] | tuple = ()) -> DegradeConfig:
    """A preset with named overrides (``{"noise.prob": 0.5}``) and ``KEY=VALUE`` settings applied.

    Overrides whose value is None are ignored, so a CLI can pass every option unconditionally.
    """
    if preset not in PRESETS:
        raise UsageError(f"unknown preset {preset!r} (choose from {', '.join(PRESETS)})")
    merged = {k: v for k, v in dict(overrides).items() if v is not None}
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set {item!r}: expected KEY=VALUE, e.g. scratches.width_range=1,4")
        merged[key.strip()] = value.strip()
    return with_overrides(PRESETS[preset], merged)
