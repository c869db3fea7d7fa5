"""Alembic environment for the shared schemas (`platform`, `billing`)."""

from alembic import context

import polyclinic.models  # noqa: F401  (every table, for autogenerate)
from polyclinic.db.migrations import run_shared_env

run_shared_env(context)
