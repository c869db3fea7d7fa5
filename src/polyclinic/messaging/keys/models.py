"""Tables of messaging keys: each clinic's wrapped data keys (in the clinic's schema), and the
platform's record of the master key in use."""

from __future__ import annotations

import datetime

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import (
    CheckConstraint,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from polyclinic.db.base import SharedBase, TenantBase
from polyclinic.tenancy.models import PLATFORM_SCHEMA


class DataKey(TenantBase):
    """One version of the clinic's data key, wrapped by a master key; the highest version is
    the one new secrets are sealed with, older ones still open what was sealed under them."""

    __tablename__ = "data_keys"
    __table_args__ = (CheckConstraint("version >= 1", name="version_positive"),)

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    # `env:<fingerprint>` or `kms:<key id>`: which master key wrapped it.
    master_key_id: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime.datetime] = mapped_column(DateTimeUTC(timezone=True))
    rewrapped_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True))


class MasterKeyCheck(SharedBase):
    """A value wrapped by the master key in use, so a process started with another key
    stops at start-up instead of at its first send."""

    __tablename__ = "master_key_check"
    __table_args__ = (
        CheckConstraint("id = 1", name="single_row"),
        {"schema": PLATFORM_SCHEMA},
    )

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    master_key_id: Mapped[str] = mapped_column(String(300))
    check_blob: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime.datetime] = mapped_column(DateTimeUTC(timezone=True))
    updated_at: Mapped[datetime.datetime] = mapped_column(DateTimeUTC(timezone=True))
