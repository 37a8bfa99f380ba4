"""Pieces shared by the benchmarks."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time


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


# Fewer samples than this and the percentile is one of the few largest
# samples, not a percentile: it is left out rather than reported.
MIN_SAMPLES_P99 = 1_000
MIN_SAMPLES_P999 = 10_000


def latency_percentiles(samples: list[float]) -> dict[str, float]:
    """Like ``latency_summary``, with the sample count, and p99 / p99.9 only
    when there are enough samples for them to mean something."""
    if not samples:
        return {"samples": 0}
    ordered = sorted(samples)

    def pct(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000, 2)

    summary: dict[str, float] = {"samples": len(ordered), "p50_ms": pct(0.50), "p90_ms": pct(0.90)}
    if len(ordered) >= MIN_SAMPLES_P99:
        summary["p99_ms"] = pct(0.99)
    if len(ordered) >= MIN_SAMPLES_P999:
        summary["p99.9_ms"] = pct(0.999)
    summary["max_ms"] = round(ordered[-1] * 1000, 2)
    summary["mean_ms"] = round(statistics.fmean(ordered) * 1000, 2)
    return summary


def print_report(
    benchmark: str, started: float, settings: dict[str, object], results: object
) -> None:
    """Prints a benchmark's one JSON object: its name and settings, when it
    started (``time.time()``) and how long it ran, its results, the machine."""
    print(
        json.dumps(
            {
                "benchmark": benchmark,
                **settings,
                "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
                "wall_s": round(time.time() - started, 1),
                "results": results,
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            },
            indent=2,
        )
    )
