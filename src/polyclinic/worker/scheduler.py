"""`polyclinic scheduler`: sends each periodic job to the workers at its interval.

Several schedulers may run (one per web process in development, say): a Redis key per job
and interval lets only one of them send it. Without Redis there is one process, so no race.
"""

from __future__ import annotations

import asyncio
import logging
import time

import dramatiq
from redis.asyncio import Redis

from polyclinic.worker.jobs import enqueue

logger = logging.getLogger("polyclinic.worker")

# (job, seconds between runs)
PERIODIC: tuple[tuple[str, int], ...] = (
    ("billing_housekeeping", 300),
    ("scheduling_housekeeping", 60),
    ("relay_outboxes", 15),
)


class Scheduler:
    def __init__(
        self,
        broker: dramatiq.Broker,
        redis: Redis | None,
        namespace: str,
        periodic: tuple[tuple[str, int], ...] = PERIODIC,
    ) -> None:
        self.broker = broker
        self.redis = redis
        self.namespace = namespace
        self.periodic = periodic
        self._next_run = {name: 0.0 for name, _ in periodic}

    async def run(self, tick_seconds: float = 1.0) -> None:
        while True:
            await self.tick()
            await asyncio.sleep(tick_seconds)

    async def tick(self) -> list[str]:
        """Send the jobs that are due; returns their names."""
        now = time.monotonic()
        sent = []
        for name, interval in self.periodic:
            if self._next_run[name] > now:
                continue
            self._next_run[name] = now + interval
            if await self._claim(name, interval):
                enqueue(self.broker, name)
                sent.append(name)
        return sent

    async def _claim(self, name: str, interval: int) -> bool:
        if self.redis is None:
            return True
        try:
            key = f"{self.namespace}:scheduler:{name}"
            return bool(await self.redis.set(key, b"1", nx=True, ex=interval))
        except Exception:
            logger.warning("scheduler could not reach Redis; %s waits for the next interval", name)
            return False
