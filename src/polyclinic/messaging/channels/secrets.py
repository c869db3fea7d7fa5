"""Sealed channel secrets of a clinic (`channel_secrets`): stored, read back for a send,
removed, and re-sealed when the clinic's data key is rotated. Nothing here logs a value."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.db.base import utcnow
from polyclinic.messaging.channels.models import ChannelSecret
from polyclinic.messaging.keys.services import Sealed, SecretBox


class ChannelSecrets:
    """The channel secrets of the session's clinic."""

    def __init__(self, session: AsyncSession, box: SecretBox) -> None:
        self.session = session
        self.box = box

    async def put(self, channel: str, provider: str, name: str, value: str) -> None:
        sealed = await self.box.seal(self.session, channel, provider, value.encode(), name=name)
        now = utcnow()
        statement = insert(ChannelSecret).values(
            id=uuid.uuid4(),
            channel=channel,
            provider=provider,
            name=name,
            key_version=sealed.key_version,
            blob=sealed.blob,
            created_at=now,
            updated_at=now,
        )
        await self.session.execute(
            statement.on_conflict_do_update(
                constraint="uq_channel_secrets_channel_provider_name",
                set_={
                    "key_version": statement.excluded.key_version,
                    "blob": statement.excluded.blob,
                    "updated_at": now,
                },
            )
        )

    async def reveal(self, channel: str, provider: str, name: str) -> str | None:
        """The plaintext, for a send; never for a response or a log line."""
        row = await self.session.scalar(
            select(ChannelSecret).where(
                ChannelSecret.channel == channel,
                ChannelSecret.provider == provider,
                ChannelSecret.name == name,
            )
        )
        if row is None:
            return None
        return await self._open(row)

    async def names(self, channel: str, provider: str) -> list[str]:
        return list(
            await self.session.scalars(
                select(ChannelSecret.name)
                .where(ChannelSecret.channel == channel, ChannelSecret.provider == provider)
                .order_by(ChannelSecret.name)
            )
        )

    async def delete(self, channel: str, provider: str | None = None) -> int:
        statement = delete(ChannelSecret).where(ChannelSecret.channel == channel)
        if provider is not None:
            statement = statement.where(ChannelSecret.provider == provider)
        result = await self.session.execute(statement)
        return result.rowcount  # type: ignore[attr-defined, no-any-return]

    async def reseal(self, below_version: int) -> int:
        """Re-seal every secret sealed under a data key version older than `below_version`
        with the current one; the caller holds the data keys' lock. Returns how many."""
        rows = (
            await self.session.scalars(
                select(ChannelSecret)
                .where(ChannelSecret.key_version < below_version)
                .with_for_update()
            )
        ).all()
        for row in rows:
            plaintext = await self._open(row)
            sealed = await self.box.seal(
                self.session, row.channel, row.provider, plaintext.encode(), name=row.name
            )
            row.key_version, row.blob, row.updated_at = sealed.key_version, sealed.blob, utcnow()
        await self.session.flush()
        return len(rows)

    async def _open(self, row: ChannelSecret) -> str:
        plaintext = await self.box.open(
            self.session,
            row.channel,
            row.provider,
            Sealed(row.key_version, row.blob),
            name=row.name,
        )
        return plaintext.decode()
