"""Alembic environment for clinic schemas.

`polyclinic tenants migrate` applies this tree to every clinic without loading this file;
it is here for the alembic command (`-x schema=clinic_xxx` picks the clinic to work on).
"""

from alembic import context

import polyclinic.models  # noqa: F401  (every table, for autogenerate)
from polyclinic.tenancy.migrations import run_tenant_env

run_tenant_env(context)
