"""Pieces shared by the benchmarks."""

from __future__ import annotations

import statistics

from websockets.asyncio.client import ClientConnection, connect

from chatmesh.frames import decode_server_frame


async def open_binary(url: str, token: str) -> ClientConnection:
    """A WebSocket client speaking protobuf frames, past its hello."""
    ws = await connect(f"{url}?access_token={token}&encoding=binary", max_queue=None)
    hello = decode_server_frame(await ws.recv())
    assert hello.WhichOneof("kind") == "hello"
    return ws


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
