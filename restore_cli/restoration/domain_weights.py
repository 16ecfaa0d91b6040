"""``--domain-weights``: how much of each input style's correction a restoration keeps.

Apart from :mod:`.vae_method` (which applies them) so that every command can validate the
option without loading JAX: ``hybrid`` and ``classical`` check it too, and say it has no effect.
"""

from __future__ import annotations

import math

from restore_cli.errors import UsageError

#: The degraded domains a photo can be restored "as": Y synthetic damage, Z real old prints.
INPUT_DOMAINS = ("Y", "Z")
DEFAULT_DOMAIN_WEIGHTS = "Y=0.5,Z=0.5"


def parse_domain_weights(
    text: str | None, domains: tuple[str, ...] = INPUT_DOMAINS, missing: float = 0.0,
    option: str = "--domain-weights",
) -> dict[str, float]:
    """``"Y=0.5,Z=0.5"`` -> ``{"Y": 0.5, "Z": 0.5}``; unnamed domains get ``missing``.

    UsageError (one clear line) for a malformed item, an unknown or repeated domain, a negative
    or non-finite value, or weights that are all zero.
    """
    weights = {d: float(missing) for d in domains}
    named: set[str] = set()
    for item in (text or "").split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        key = key.strip().upper()
        if not sep:
            raise UsageError(f"{option}: {item.strip()!r} is not DOMAIN=WEIGHT (e.g. {DEFAULT_DOMAIN_WEIGHTS})")
        if key not in domains:
            hint = " (X is the clean target, not an input style)" if key == "X" else ""
            raise UsageError(f"{option}: unknown domain {key!r}{hint}; use {', '.join(domains)}")
        if key in named:
            raise UsageError(f"{option}: domain {key} given twice")
        try:
            number = float(value)
        except ValueError:
            raise UsageError(f"{option}: {key}={value.strip()!r} is not a number") from None
        if not math.isfinite(number) or number < 0:
            raise UsageError(f"{option}: {key}={value.strip()} must be a finite number >= 0")
        weights[key] = number
        named.add(key)
    if not any(weights.values()):
        raise UsageError(f"{option}: the weights are all zero; at least one domain needs a positive weight")
    return weights
