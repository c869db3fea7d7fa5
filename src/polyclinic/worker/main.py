"""Entry module for `polyclinic worker` (dramatiq imports it): sets the broker, then loads
every domain's actors, which must be declared after the broker exists."""

from __future__ import annotations

import dramatiq

from polyclinic.config import get_settings
from polyclinic.worker.broker import create_broker

broker = create_broker(get_settings())
dramatiq.set_broker(broker)

# Domain task modules register their actors on import; add each here as it appears.
TASK_MODULES: tuple[str, ...] = ()
for module in TASK_MODULES:
    __import__(module)
