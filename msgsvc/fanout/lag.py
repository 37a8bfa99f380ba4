"""Reporting the fan-out worker's consumer lag per partition.

The lag of a partition is what a new owner would read again: the records
between the group's committed offset and the partition's high watermark.
Both come from the broker (``LogConsumer.lag``, blocking), so each report
runs in a thread, every ``LAG_INTERVAL_S``: often enough for an alert on a
growing backlog, rarely enough that the broker does not notice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

from msgsvc.fanout import metrics

LAG_INTERVAL_S = 15.0

LagSource = Callable[[], Mapping[int, int]]  # partition -> records; blocking


class LagReporter:
    def __init__(self, lag: LagSource) -> None:
        self._lag = lag
        self._reported: set[int] = set()

    async def report_once(self) -> None:
        lags = await asyncio.to_thread(self._lag)
        for partition, records in lags.items():
            metrics.CONSUMER_LAG.labels(str(partition)).set(records)
        # A partition that moved to another worker is that worker's to report.
        for partition in self._reported - lags.keys():
            metrics.CONSUMER_LAG.remove(str(partition))
        self._reported = set(lags)
