"""Entry module for `polyclinic worker` (dramatiq imports it): the broker, with every job
declared on it."""

from __future__ import annotations

import dramatiq

from polyclinic.config import get_settings
from polyclinic.logs import configure_logging
from polyclinic.worker.broker import create_broker

settings = get_settings()
configure_logging(settings.log_level)
broker = create_broker(settings)
dramatiq.set_broker(broker)
