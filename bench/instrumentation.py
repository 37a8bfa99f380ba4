"""What metrics and tracing add to each message, in CPU time, in isolation.

    .venv/bin/python -m bench.instrumentation [--calls 200000]

Times, in one process with nothing on the network, the instrumentation a 1:1
send passes through against the same calls bare: a store call observed
(``chatmesh.store_observer``), a client frame observed in msgsvc
(``msgsvc.frame_observer``), the gateway's frame counters. Each with tracing
off (the default), on with the trace sampled (an SDK tracer whose spans go
nowhere, so export costs are not counted: the SDK's exporting thread runs off
the event loop), and on with the trace not sampled.
Prints one JSON object: nanoseconds per call, the median of ``--repeats``
rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import time
from collections.abc import Awaitable, Callable

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from chatmesh.store_observer import observed
from chatmesh.tracing import NO_TRACING, TRACEPARENT, Tracing, carrier_of
from chatmesh.v1 import client_pb2, message_service_pb2
from gateway import metrics as gateway_metrics
from msgsvc.frame_observer import FrameObserver

# What one 1:1 send costs in instrumented operations on its way: store calls
# (claim, activity mark, row write, journal entry and its deletion, the
# delivery publish), one frame in msgsvc, and at the gateways the send frame
# in, the ack and the deliver frame out.
STORE_CALLS_PER_SEND = 6
FRAMES_IN_PER_SEND = 1
FRAMES_OUT_PER_SEND = 2


class _Store:
    async def write(self, value: int) -> int:
        return value


class _Frames:
    """Stands in for ClientFrameHandler: answers every frame with an ack."""

    def __init__(self) -> None:
        self._ack = client_pb2.ServerFrame(ack=client_pb2.AckFrame(message_id=1))

    async def handle(
        self, user_id: str, device_id: str, frame: client_pb2.ClientFrame
    ) -> client_pb2.ServerFrame:
        return self._ack


async def _per_call_ns(call: Callable[[], Awaitable[object]], calls: int) -> float:
    started = time.perf_counter_ns()
    for _ in range(calls):
        await call()
    return (time.perf_counter_ns() - started) / calls


def _sync_per_call_ns(call: Callable[[], object], calls: int) -> float:
    started = time.perf_counter_ns()
    for _ in range(calls):
        call()
    return (time.perf_counter_ns() - started) / calls


async def _round(calls: int, tracing: Tracing) -> dict[str, float]:
    bare = _Store()
    store = observed(_Store(), store="bench", component="store", tracing=tracing)
    handler = _Frames()
    frames = FrameObserver(handler, tracing)  # type: ignore[arg-type]  # duck-typed stand-in
    inbound = message_service_pb2.InboundFrame(
        seq=1,
        user_id="u",
        device_id="d",
        frame=client_pb2.ClientFrame(send=client_pb2.SendFrame(client_msg_id="m")),
    )
    ack = client_pb2.ServerFrame(ack=client_pb2.AckFrame(message_id=1))
    span = (
        tracing.tracer.start_as_current_span("frame send") if tracing.enabled else None
    )  # store spans are made only within a trace
    if span is not None:
        span.__enter__()
        # As the gateway sends it: the trace, and whether it is sampled.
        inbound.traceparent = carrier_of().get(TRACEPARENT, "")
    try:
        return {
            "store_call_bare_ns": await _per_call_ns(lambda: bare.write(1), calls),
            "store_call_observed_ns": await _per_call_ns(lambda: store.write(1), calls),
            "frame_bare_ns": await _per_call_ns(
                lambda: handler.handle("u", "d", inbound.frame), calls
            ),
            "frame_observed_ns": await _per_call_ns(
                lambda: frames.handle(inbound, time.perf_counter()), calls
            ),
            "gateway_frame_in_ns": _sync_per_call_ns(
                lambda: gateway_metrics.frame_received("send"), calls
            ),
            "gateway_frame_out_ns": _sync_per_call_ns(
                lambda: gateway_metrics.frame_sent(ack), calls
            ),
        }
    finally:
        if span is not None:
            span.__exit__(None, None, None)


async def _measure(calls: int, repeats: int, tracing: Tracing) -> dict[str, float]:
    rounds = [await _round(calls, tracing) for _ in range(repeats)]
    median = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
    added_per_send = (
        STORE_CALLS_PER_SEND * (median["store_call_observed_ns"] - median["store_call_bare_ns"])
        + (median["frame_observed_ns"] - median["frame_bare_ns"])
        + FRAMES_IN_PER_SEND * median["gateway_frame_in_ns"]
        + FRAMES_OUT_PER_SEND * median["gateway_frame_out_ns"]
    )
    return {
        **{k: round(v, 1) for k, v in median.items()},
        "added_per_send_us": added_per_send / 1e3,
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    provider = TracerProvider()  # no span processor: spans are recorded, then dropped
    traced = Tracing(provider.get_tracer("bench"), provider)
    # Tracing on, this trace not sampled (as most are with a ratio sampler).
    unsampled_provider = TracerProvider(sampler=ALWAYS_OFF)
    unsampled = Tracing(unsampled_provider.get_tracer("bench"), unsampled_provider)
    result = {
        "benchmark": "instrumentation",
        "python": platform.python_version(),
        "calls": args.calls,
        "repeats": args.repeats,
        "tracing_off": await _measure(args.calls, args.repeats, NO_TRACING),
        "tracing_on_sampled": await _measure(args.calls // 10, args.repeats, traced),
        "tracing_on_not_sampled": await _measure(args.calls, args.repeats, unsampled),
        "per_send": {
            "store_calls": STORE_CALLS_PER_SEND,
            "frames_in": FRAMES_IN_PER_SEND,
            "frames_out": FRAMES_OUT_PER_SEND,
        },
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
