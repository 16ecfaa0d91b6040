"""Architecture configs travel in checkpoint headers as plain dicts; this reads them back strictly."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")


def dataclass_from_dict(cls: type[T], data: dict[str, Any], what: str) -> T:
    """``cls(**data)``, refusing unknown keys: a header from a newer or foreign model must not half-load."""
    unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
        raise ValueError(f"unknown {what} config keys {sorted(unknown)}")
    return cls(**data)
