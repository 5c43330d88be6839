"""Fault injection for the simulator: parse `--faults`, decide per request, count.

A fault decision must be reproducible: the same seed and the same sequence of requests give
the same faults, whatever order concurrent requests happen to arrive in. So the decision is a
hash of (seed, method, path and query, how many times this exact request was seen before),
mapped to [0, 1) and then to a fault kind by cumulative rate. A client retrying a request
sees a new draw on each attempt (the counter moves), as it would against a flaky service.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

# The order is part of the contract: it fixes which kind a draw falls into.
FAULT_KINDS: tuple[str, ...] = ("429", "500", "503", "reset", "timeout", "badjson", "expire")


def parse_faults(spec: str) -> dict[str, float]:
    """Parse a spec such as `429=0.1,503=0.05,reset=0.02` into kind -> probability.

    Raises ValueError naming the bad part: unknown kind, missing `=`, a rate that is not a
    number in [0, 1], a kind given twice, or rates summing to more than 1.
    """
    rates: dict[str, float] = {}
    text = spec.strip()
    if not text:
        return rates
    for raw in text.split(","):
        part = raw.strip()
        if not part:
            raise ValueError(f"fault spec {spec!r}: empty entry (two commas in a row?)")
        kind, sep, value = part.partition("=")
        kind = kind.strip()
        if not sep:
            raise ValueError(f"fault spec {spec!r}: {part!r} is not KIND=RATE")
        if kind not in FAULT_KINDS:
            raise ValueError(
                f"fault spec {spec!r}: unknown kind {kind!r}; known: {', '.join(FAULT_KINDS)}"
            )
        if kind in rates:
            raise ValueError(f"fault spec {spec!r}: kind {kind!r} given twice")
        try:
            rate = float(value)
        except ValueError:
            raise ValueError(
                f"fault spec {spec!r}: rate {value.strip()!r} is not a number"
            ) from None
        if not math.isfinite(rate) or not 0.0 <= rate <= 1.0:
            raise ValueError(f"fault spec {spec!r}: rate of {kind!r} must be in [0, 1]")
        rates[kind] = rate
    if sum(rates.values()) > 1.0 + 1e-9:
        raise ValueError(f"fault spec {spec!r}: rates sum to more than 1")
    return rates


def format_faults(rates: Mapping[str, float]) -> str:
    """The spec string for `rates` (inverse of `parse_faults`, kinds in canonical order)."""
    return ",".join(f"{kind}={rates[kind]:g}" for kind in FAULT_KINDS if kind in rates)


def draw(seed: int, method: str, target: str, occurrence: int) -> float:
    """A uniform number in [0, 1) fixed by the seed and the request, not by timing."""
    key = f"{seed}\x00{method.upper()}\x00{target}\x00{occurrence}".encode()
    digest = hashlib.blake2b(key, digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


@dataclass
class FaultPlan:
    """Decides which requests get a fault; keeps the per-request occurrence counters."""

    seed: int
    rates: Mapping[str, float]
    _seen: Counter[tuple[str, str]] = field(default_factory=Counter, repr=False)

    def __post_init__(self) -> None:
        unknown = set(self.rates) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds: {', '.join(sorted(unknown))}")
        total = sum(self.rates.values())
        if any(not 0.0 <= r <= 1.0 for r in self.rates.values()) or total > 1.0 + 1e-9:
            raise ValueError("fault rates must each be in [0, 1] and sum to at most 1")

    def decide(self, method: str, target: str) -> str | None:
        """The fault kind for this request (`target` = path plus query), or None."""
        key = (method.upper(), target)
        occurrence = self._seen[key]
        self._seen[key] = occurrence + 1
        if not self.rates:
            return None
        u = draw(self.seed, method, target, occurrence)
        edge = 0.0
        for kind in FAULT_KINDS:
            edge += self.rates.get(kind, 0.0)
            if u < edge:
                return kind
        return None


@dataclass
class SimStats:
    """Counters a test or benchmark reads in-process while the server runs.

    `requests` counts API requests (identity requests are in `token_requests`); `faults`
    counts injected faults per kind; `throttled` counts service-protection 429s (not the
    injected ones); `unauthorized` counts 401s for missing, wrong or expired tokens;
    `affinity_cookies` counts Dataverse requests that sent the server-affinity cookie back.
    """

    requests: int = 0
    token_requests: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    throttled: int = 0
    unauthorized: int = 0
    affinity_cookies: int = 0  # Dataverse requests that sent the server-affinity cookie back

    def snapshot(self) -> dict[str, object]:
        """A plain copy of the counters, safe to keep while the server goes on counting."""
        return {
            "requests": self.requests,
            "token_requests": self.token_requests,
            "faults": {kind: self.faults.get(kind, 0) for kind in FAULT_KINDS},
            "throttled": self.throttled,
            "unauthorized": self.unauthorized,
            "affinity_cookies": self.affinity_cookies,
        }
