"""Jobs are declared once, as plain (async) functions, and bound to whichever broker a
process creates: the web process, `polyclinic worker`, or a test's own broker.

An async job runs on the worker's event loop (dramatiq's AsyncIO middleware) and reaches the
database and Redis through `job_resources()`.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import dramatiq
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.config import Settings
from polyclinic.db.engine import create_app_engine

# Every package's `jobs` module declares its jobs with @job on import; the worker names none.
JOBS_MODULE = "jobs"


@dataclass(frozen=True)
class JobSpec:
    fn: Callable[..., Any]
    queue: str
    options: dict[str, Any]


_JOBS: dict[str, JobSpec] = {}


def job(*, queue: str = "default", **options: Any) -> Callable[[Callable[..., Any]], Any]:
    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        _JOBS[fn.__name__] = JobSpec(fn, queue, options)
        return fn

    return register


def job_modules() -> list[str]:
    """The `jobs` modules of every package under polyclinic, found by name."""
    import polyclinic

    return sorted(
        info.name
        for info in pkgutil.walk_packages(polyclinic.__path__, "polyclinic.")
        if info.name.rsplit(".", 1)[-1] == JOBS_MODULE and not info.ispkg and info.name != __name__
    )


def declare_jobs(broker: dramatiq.Broker) -> None:
    for module in job_modules():
        importlib.import_module(module)
    for name, spec in _JOBS.items():
        if name not in broker.actors:
            dramatiq.Actor(
                spec.fn,
                broker=broker,
                actor_name=name,
                queue_name=spec.queue,
                priority=0,
                options=spec.options,
            )


def enqueue(broker: dramatiq.Broker, name: str, *args: Any) -> None:
    broker.get_actor(name).send(*args)


class JobResources(dramatiq.Middleware):
    """Settings, the broker, and a database engine and Redis client made on the worker's own
    event loop (connections belong to the loop that opened them)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._engine: AsyncEngine | None = None
        self._redis: Redis | None = None
        # The broker running the job, for jobs that send jobs (the outbox relay).
        self.broker: dramatiq.Broker | None = None

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            self._engine = create_app_engine(self.settings, pool_size=2)
        return self._engine

    @property
    def redis(self) -> Redis | None:
        if self._redis is None and self.settings.redis_url:
            self._redis = Redis.from_url(self.settings.redis_url)
        return self._redis

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        self.broker = broker
        _current.set(self)

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        from dramatiq.asyncio import get_event_loop_thread

        loop_thread = get_event_loop_thread()
        if loop_thread is not None and (self._engine or self._redis):
            loop_thread.run_coroutine(self.close())

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None


_current: ContextVar[JobResources | None] = ContextVar("job_resources", default=None)


def job_resources() -> JobResources:
    resources = _current.get()
    if resources is None:
        raise RuntimeError("job_resources() is only available inside a running job")
    return resources
