"""Entry module for `polyclinic worker` (dramatiq imports it): the broker, with every job
declared on it."""

from __future__ import annotations

import dramatiq

from polyclinic.config import get_settings
from polyclinic.worker.broker import create_broker

broker = create_broker(get_settings())
dramatiq.set_broker(broker)
