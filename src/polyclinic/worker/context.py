"""Jobs carry their clinic: the id goes into the message when it is sent from a clinic's
context, and the worker restores that clinic's context before the actor runs."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from contextvars import Token
from typing import Any

import dramatiq
from dramatiq.middleware import SkipMessage

from polyclinic.db.context import TenantInfo, current_tenant
from polyclinic.tenancy.models import TenantStatus

logger = logging.getLogger("polyclinic.worker")

TENANT_OPTION = "tenant_id"
_GONE = (TenantStatus.DELETED, TenantStatus.FAILED)


class TenantContext(dramatiq.Middleware):
    def __init__(self, lookup: Callable[[uuid.UUID], TenantInfo | None]) -> None:
        self.lookup = lookup
        self._local = threading.local()

    @property
    def actor_options(self) -> set[str]:
        return {TENANT_OPTION}

    def before_enqueue(
        self, broker: dramatiq.Broker, message: dramatiq.Message, delay: int
    ) -> None:
        tenant = current_tenant.get()
        if tenant is not None and TENANT_OPTION not in message.options:
            message.options[TENANT_OPTION] = str(tenant.id)

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        tenant_id = message.options.get(TENANT_OPTION)
        if tenant_id is None:
            return
        tenant = self.lookup(uuid.UUID(tenant_id))
        if tenant is None or tenant.status in _GONE:
            logger.warning(
                "skipping %s (message %s): clinic %s no longer exists",
                message.actor_name,
                message.message_id,
                tenant_id,
            )
            raise SkipMessage(f"clinic {tenant_id} no longer exists")
        self._local.token = current_tenant.set(tenant)

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: Any,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        self._reset()

    def after_skip_message(self, broker: dramatiq.Broker, message: Any) -> None:
        self._reset()

    def _reset(self) -> None:
        token: Token[TenantInfo | None] | None = getattr(self._local, "token", None)
        if token is not None:
            current_tenant.reset(token)
            self._local.token = None
