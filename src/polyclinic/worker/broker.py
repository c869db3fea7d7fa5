"""The dramatiq broker, with the clinic-context middleware.

Redis when REDIS_URL is set. Without it, and only where workers run in the same process
(`polyclinic dev`), jobs queue in memory: they do not survive a restart.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable

import redis
from dramatiq import Broker, Worker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware.asyncio import AsyncIO
from sqlalchemy import Engine

from polyclinic.config import Settings
from polyclinic.db.context import TenantInfo
from polyclinic.db.engine import create_sync_engine
from polyclinic.errors import Unavailable
from polyclinic.tenancy.models import Tenant
from polyclinic.tenancy.resolver import TENANT_INFO_QUERY, tenant_info
from polyclinic.worker.context import TenantContext
from polyclinic.worker.jobs import JobResources, declare_jobs


def registry_lookup(settings: Settings) -> Callable[[uuid.UUID], TenantInfo | None]:
    """Looks clinics up for jobs; its engine is made on the first job, so processes that only
    send jobs (web, scheduler) never open one."""
    engines: list[Engine] = []
    making = threading.Lock()

    def lookup(tenant_id: uuid.UUID) -> TenantInfo | None:
        with making:
            if not engines:
                engines.append(create_sync_engine(settings, pool_size=2))
        with engines[0].connect() as connection:
            row = connection.execute(TENANT_INFO_QUERY.where(Tenant.id == tenant_id)).first()
        return tenant_info(row)

    return lookup


def create_broker(settings: Settings, *, namespace: str | None = None) -> Broker:
    broker: Broker
    if settings.redis_url:
        # A Redis that does not answer must not hold a request that asks for a relay.
        client = redis.Redis.from_url(
            settings.redis_url, socket_connect_timeout=5, socket_timeout=10
        )
        broker = RedisBroker(client=client, namespace=namespace or settings.redis_namespace)
    elif settings.in_process_workers:
        broker = StubBroker()
    else:
        raise Unavailable("REDIS_URL is required for background jobs")
    broker.add_middleware(TenantContext(registry_lookup(settings)))
    # Before AsyncIO, so the resources close on the event loop before the loop stops.
    broker.add_middleware(JobResources(settings))
    broker.add_middleware(AsyncIO())
    declare_jobs(broker)
    return broker


class InProcessWorkers:
    """Workers on threads of this process, for `polyclinic dev`."""

    def __init__(self, broker: Broker, threads: int = 2) -> None:
        self.broker = broker
        self.worker = Worker(broker, worker_threads=threads, worker_timeout=200)

    def start(self) -> None:
        self.worker.start()

    def stop(self) -> None:
        self.worker.stop()
        self.broker.close()
