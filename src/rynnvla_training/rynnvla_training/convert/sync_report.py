"""Per-episode synchronisation report: how well each stream matched the frame grid."""

from __future__ import annotations

import numpy as np


def stream_report(ages_ns: np.ndarray, max_age_ns: int | None) -> dict:
    """Report of one stream over an episode's frames.

    ages_ns: (N,) age of the as-of sample at every frame (frame time - message stamp, >= 0).
    match_rate: fraction of frames whose sample is at most ``max_age_ns`` old.
    offset_ms: median / p95 / max of the ages in milliseconds.
    """
    ages_ms = ages_ns.astype(np.float64) / 1e6
    matched = np.ones_like(ages_ns, dtype=bool) if max_age_ns is None else ages_ns <= max_age_ns
    report = {
        "match_rate": float(matched.mean()) if ages_ns.size else 0.0,
        "offset_ms": {
            "median": float(np.median(ages_ms)) if ages_ns.size else None,
            "p95": float(np.percentile(ages_ms, 95)) if ages_ns.size else None,
            "max": float(ages_ms.max()) if ages_ns.size else None,
        },
        "max_age_ms": None if max_age_ns is None else max_age_ns / 1e6,
    }
    return report


def format_sync_line(name: str, report: dict) -> str:
    """One human-readable line: "front  match 99.7%  offset median 12.1 p95 30.2 max 48.0 ms"."""
    offsets = report["offset_ms"]
    if offsets["median"] is None:
        return f"{name:<12} no frames"
    return (
        f"{name:<12} match {100 * report['match_rate']:5.1f}%  offset median "
        f"{offsets['median']:.1f} p95 {offsets['p95']:.1f} max {offsets['max']:.1f} ms"
    )
