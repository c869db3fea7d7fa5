"""Every log line names its request and its clinic (or `-` where there is none)."""

from __future__ import annotations

import logging
from typing import Any

from polyclinic.db.context import current_tenant
from polyclinic.web.request_id import current_request_id

FORMAT = "%(asctime)s %(levelname)s %(name)s [request=%(request_id)s clinic=%(clinic)s] %(message)s"
_base_factory = logging.getLogRecordFactory()


def _record_with_context(*args: Any, **kwargs: Any) -> logging.LogRecord:
    record = _base_factory(*args, **kwargs)
    tenant = current_tenant.get()
    record.request_id = current_request_id.get() or "-"
    record.clinic = tenant.slug if tenant is not None else "-"
    return record


def configure_logging(level: str) -> None:
    """Safe to call again (the CLI first, then the app with LOG_LEVEL), and inside a
    dramatiq worker process, whose own handlers are kept and given this format."""
    logging.setLogRecordFactory(_record_with_context)
    root = logging.getLogger()
    if root.handlers:
        for handler in root.handlers:
            handler.setFormatter(logging.Formatter(FORMAT))
    else:
        logging.basicConfig(format=FORMAT)
    root.setLevel(level)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
