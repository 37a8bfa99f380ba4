"""Pieces shared by the benchmarks."""

from __future__ import annotations

import statistics


def latency_summary(samples: list[float]) -> dict[str, float]:
    """Percentiles of durations given in seconds, reported in milliseconds."""
    if not samples:
        return {}
    ordered = sorted(samples)

    def pct(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000, 2)

    return {
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "max_ms": round(ordered[-1] * 1000, 2),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 2),
    }
