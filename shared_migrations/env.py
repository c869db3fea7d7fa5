"""Alembic environment for the shared schemas (`platform`, `billing`)."""

from alembic import context

from polyclinic.db.migrations import run_shared_env

run_shared_env(context)
