"""Shared migration 0007 gives existing plans the platform's messaging features, keeping what
a plan already says."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import insert, select

from polyclinic.billing.models import Plan
from polyclinic.config import Settings
from polyclinic.db.engine import create_sync_engine

MIGRATION = (
    Path(__file__).parents[2]
    / "shared_migrations"
    / "versions"
    / "20261121_0007_platform_messaging_features.py"
)


def migration() -> ModuleType:
    spec = importlib.util.spec_from_file_location("shared_0007", MIGRATION)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_existing_plans_get_the_platforms_email_and_sms_where_they_say_nothing(
    settings: Settings,
) -> None:
    before = [
        ("starter", {"sms": False}),
        ("growth", {"sms": True}),
        ("network", {"platformSms": False}),
        ("custom-plan", {"platformEmail": False}),
    ]
    engine = create_sync_engine(settings, pool_size=1)
    try:
        with engine.connect() as connection, connection.begin() as transaction:
            for code, features in before:
                connection.execute(
                    insert(Plan).values(
                        code=code,
                        version=900,
                        name=code.title(),
                        price_minor=0,
                        currency="EUR",
                        interval="month",
                        overage_policy="block",
                        features=features,
                        status="archived",
                        is_default=False,
                    )
                )
            with Operations.context(MigrationContext.configure(connection)):
                migration().upgrade()
            after = dict(
                connection.execute(
                    select(Plan.code, Plan.features).where(Plan.version == 900)
                ).all()
            )
            transaction.rollback()
    finally:
        engine.dispose()

    assert after == {
        "starter": {"sms": False, "platformEmail": True, "platformSms": False},
        "growth": {"sms": True, "platformEmail": True, "platformSms": True},
        "network": {"platformSms": False, "platformEmail": True},
        "custom-plan": {"platformEmail": False, "platformSms": False},
    }
