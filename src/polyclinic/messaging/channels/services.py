"""A clinic's messaging channels: which provider each uses, its settings (`channel_settings`)
and its secrets (sealed, `channel_secrets`), and the provider built from them for a send.

Settings are checked per provider when saved, so a clinic finds out then, with the field
named, and not at its first send. Secrets are write-only: nothing here returns or logs one.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.billing.features import FEATURE_NAMES, require_feature
from polyclinic.billing.standing import standing_problem
from polyclinic.billing.subscriptions import clinic_subscription
from polyclinic.config import Settings
from polyclinic.db.base import utcnow
from polyclinic.db.session import clinic_of
from polyclinic.errors import FieldError, InvalidInput, NotFound, Unavailable
from polyclinic.identity.accounts.models import User
from polyclinic.messaging.channels.models import CHANNELS, ChannelSetting
from polyclinic.messaging.channels.platform_providers import (
    PLATFORM_FEATURES,
    STANDING_REQUIRED,
    platform_provider,
)
from polyclinic.messaging.channels.providers import (
    PROVIDERS,
    OutgoingMessage,
    Provider,
    ProviderSpec,
)
from polyclinic.messaging.channels.providers.base import MASK
from polyclinic.messaging.channels.secrets import ChannelSecrets
from polyclinic.messaging.keys.services import secret_box_for
from polyclinic.messaging.preferences.services import phone_address

logger = logging.getLogger("polyclinic.messaging")


T = TypeVar("T", bound=msgspec.Struct)


# Secrets this long show their last 4 characters when masked; shorter ones show none.
MASK_TAIL_FROM = 16


@dataclass(frozen=True)
class ConfiguredChannel:
    row: ChannelSetting
    masked_secrets: list[tuple[str, str]]


@dataclass(frozen=True)
class TestMessage:
    channel: str
    provider: str
    to: str
    provider_message_id: str


def mask(secret: str) -> str:
    return MASK + secret[-4:] if len(secret) >= MASK_TAIL_FROM else MASK


def _required_secrets(spec: ProviderSpec) -> list[str]:
    return [
        field.encode_name for field in msgspec.structs.fields(spec.secrets_type) if field.required
    ]


# Channels a plan must include (email is always there).
PLAN_FEATURE_CHANNELS = frozenset({"sms", "whatsapp"})


class Channels:
    """The channels of the session's clinic."""

    def __init__(self, session: AsyncSession, settings: Settings) -> None:
        self.db = session
        self.settings = settings
        self.secrets = ChannelSecrets(session, secret_box_for(settings))

    async def list(self) -> list[ConfiguredChannel]:
        rows = await self.db.scalars(select(ChannelSetting).order_by(ChannelSetting.channel))
        return [await self._configured(row) for row in rows]

    async def get(self, channel: str) -> ConfiguredChannel:
        return await self._configured(await self._row(channel))

    async def save(
        self,
        channel: str,
        provider: str,
        settings: dict[str, Any],
        secrets: dict[str, Any] | None,
    ) -> ConfiguredChannel:
        """Replace the channel's provider and settings; `secrets=None` keeps the stored ones
        (of the same provider only). A previous provider's secrets are deleted."""
        spec = _spec(channel, provider)
        if channel in PLAN_FEATURE_CHANNELS:
            await require_feature(self.db, clinic_of(self.db).id, channel)
        values = _convert(settings, spec.settings_type, "settings")
        current = await self.db.scalar(
            select(ChannelSetting).where(ChannelSetting.channel == channel).with_for_update()
        )
        same_provider = current is not None and current.provider == spec.name
        new_secrets: dict[str, str] | None = None
        if secrets is None:
            names = set(await self.secrets.names(channel, spec.name)) if same_provider else set()
        else:
            converted = msgspec.to_builtins(_convert(secrets, spec.secrets_type, "secrets"))
            new_secrets = {name: value for name, value in converted.items() if value is not None}
            names = set(new_secrets)
        errors = [
            FieldError(f"secrets.{name}", "is required")
            for name in _required_secrets(spec)
            if name not in names
        ] + spec.check(values, names)
        if errors:
            raise InvalidInput(f"The {channel} channel's settings are incomplete", errors)

        now = utcnow()
        stored = {k: v for k, v in msgspec.to_builtins(values).items() if v is not None}
        statement = insert(ChannelSetting).values(
            id=uuid.uuid4(),
            channel=channel,
            provider=spec.name,
            settings=stored,
            created_at=now,
            updated_at=now,
        )
        await self.db.execute(
            statement.on_conflict_do_update(
                index_elements=["channel"],
                set_={"provider": spec.name, "settings": stored, "updated_at": now},
            )
        )
        if new_secrets is not None or not same_provider:
            await self.secrets.delete(channel)
            for name, value in (new_secrets or {}).items():
                await self.secrets.put(channel, spec.name, name, value)
        await self.db.commit()
        logger.info("%s channel saved with provider %s", channel, spec.name)
        return await self.get(channel)

    async def delete(self, channel: str) -> None:
        await self._row(channel, lock=True)
        await self.db.execute(delete(ChannelSetting).where(ChannelSetting.channel == channel))
        await self.secrets.delete(channel)
        await self.db.commit()
        logger.info("%s channel removed", channel)

    async def send_test(self, channel: str, user: User) -> TestMessage:
        """A test message to `user` through the clinic's own provider, sent now."""
        _check_channel(channel)
        if channel == "email":
            to = user.email
        elif (phone := phone_address(user.phone)) is not None:
            to = phone
        else:
            raise InvalidInput(
                f"A test {channel} message goes to your phone number, and your profile has "
                "none in E.164 form",
                [FieldError("phone", "add a phone number in E.164 form, e.g. +4930123456")],
            )
        provider = await provider_for(self.db, self.settings, channel)
        if provider is None:
            raise NotFound(f"The {channel} channel has no provider: save one first")
        clinic = clinic_of(self.db).name
        # Nothing is held in the database while the provider answers.
        await self.db.commit()
        message_id = await provider.send(
            OutgoingMessage(
                channel=channel,
                to=to,
                subject=f"Test message from {clinic}",
                body=(
                    f"This is a test message from {clinic}, sent through {provider.name}: "
                    f"the {channel} channel works."
                ),
                idempotency_key=uuid.uuid4().hex,
            )
        )
        logger.info(
            "test %s message sent through %s (provider message id %s)",
            channel,
            provider.name,
            message_id,
        )
        return TestMessage(channel, provider.name, to, message_id)

    async def _row(self, channel: str, *, lock: bool = False) -> ChannelSetting:
        _check_channel(channel)
        # populate_existing: a row saved by the upsert in this session is read afresh.
        query = (
            select(ChannelSetting)
            .where(ChannelSetting.channel == channel)
            .execution_options(populate_existing=True)
        )
        row = await self.db.scalar(query.with_for_update() if lock else query)
        if row is None:
            raise NotFound(f"The {channel} channel has no provider")
        return row

    async def _configured(self, row: ChannelSetting) -> ConfiguredChannel:
        masked = []
        for name in await self.secrets.names(row.channel, row.provider):
            value = await self.secrets.reveal(row.channel, row.provider, name)
            masked.append((name, mask(value or "")))
        return ConfiguredChannel(row, masked)


async def provider_for(session: AsyncSession, settings: Settings, channel: str) -> Provider | None:
    """The provider of the session's clinic for `channel`, with its settings and its opened
    secrets; None when the clinic has configured none (the caller falls back or records the
    message as not sent)."""
    row = await session.scalar(select(ChannelSetting).where(ChannelSetting.channel == channel))
    if row is None:
        return None
    spec = PROVIDERS.get(channel, {}).get(row.provider)
    if spec is None:
        raise Unavailable(f"The {channel} channel's provider {row.provider!r} is not known here")
    store = ChannelSecrets(session, secret_box_for(settings))
    secrets = {}
    for name in await store.names(channel, row.provider):
        secrets[name] = await store.reveal(channel, row.provider, name)
    try:
        values = msgspec.convert(row.settings, spec.settings_type)
        opened = msgspec.convert(secrets, spec.secrets_type)
    except msgspec.ValidationError:
        raise Unavailable(
            f"The {channel} channel's stored settings no longer fit provider {row.provider}: "
            "save the channel again"
        ) from None
    return spec.build(values, opened, settings)


@dataclass(frozen=True)
class Sender:
    """Who sends the clinic's messages on a channel: its own provider, the platform's default
    (`platform`), or nobody (`provider` None) for the `reason` given; `lapsed` when that is
    the clinic's subscription not being in good standing."""

    provider: Provider | None
    reason: str | None = None
    platform: bool = False
    lapsed: bool = False

    @property
    def provider_name(self) -> str | None:
        """For the delivery log: `smtp`, or `platform-smtp` for the platform's."""
        if self.provider is None:
            return None
        return f"platform-{self.provider.name}" if self.platform else self.provider.name


async def sender_for(session: AsyncSession, settings: Settings, channel: str) -> Sender:
    """The sender of the session's clinic for `channel`: the clinic's own provider; else the
    platform's default for the channel, when there is one and the clinic's plan includes it
    (for text messages, only while the clinic is in good standing: the platform pays for
    them); else nobody, with the reason. Raises `Unavailable` as `provider_for` does."""
    own = await provider_for(session, settings, channel)
    if own is not None:
        return Sender(own)
    clinic = clinic_of(session)
    missing = f"the clinic has no {channel} provider"
    feature = PLATFORM_FEATURES.get(channel)
    default = platform_provider(settings, channel, clinic.name)
    if feature is None or default is None:
        return Sender(None, f"{missing} and the platform has no default {channel} provider")
    found = await clinic_subscription(session, clinic.id)
    if found is None:
        return Sender(None, f"{missing} and no plan that includes {FEATURE_NAMES[feature]}")
    subscription, plan = found
    if not plan.features.get(feature):
        return Sender(
            None, f"{missing} and its {plan.name} plan does not include {FEATURE_NAMES[feature]}"
        )
    if channel in STANDING_REQUIRED:
        problem = standing_problem(clinic, subscription, settings.past_due_grace_days)
        if problem is not None:
            return Sender(
                None,
                f"{missing}, and {FEATURE_NAMES[feature]} are not available while {problem}",
                lapsed=True,
            )
    return Sender(default, platform=True)


def _check_channel(channel: str) -> None:
    if channel not in CHANNELS:
        raise NotFound(f"No channel {channel!r}: use {', '.join(CHANNELS)}")


def _spec(channel: str, provider: str) -> ProviderSpec:
    _check_channel(channel)
    spec = PROVIDERS[channel].get(provider)
    if spec is None:
        offered = " or ".join(PROVIDERS[channel])
        raise InvalidInput(
            f"The {channel} channel has no provider {provider!r}",
            [FieldError("provider", f"must be {offered}")],
        )
    return spec


def _convert(value: dict[str, Any], type_: type[T], prefix: str) -> T:
    try:
        return msgspec.convert(value, type_)
    except msgspec.ValidationError as exc:
        raise InvalidInput(
            f"The {prefix} are invalid for this provider", [_field_error(str(exc), type_, prefix)]
        ) from None


def _field_error(message: str, type_: type[msgspec.Struct], prefix: str) -> FieldError:
    """msgspec's message, as a field and a reason (msgspec never quotes the value)."""
    reason, _, where = message.partition(" - at `$")
    path = where.rstrip("`").lstrip(".")
    if reason.startswith("Object missing required field `"):
        name = reason.split("`")[1]
        return FieldError(_join(prefix, path, name), "is required")
    if reason.startswith("Object contains unknown field `"):
        name = reason.split("`")[1]
        return FieldError(_join(prefix, path, name), "is not a field of this provider")
    if "matching regex" in reason:
        hint = _description(type_, path)
        return FieldError(
            _join(prefix, path), f"must be {hint}" if hint else "is not in the expected format"
        )
    return FieldError(_join(prefix, path), reason)


def _join(*parts: str) -> str:
    return ".".join(part for part in parts if part)


def _description(type_: type[msgspec.Struct], name: str) -> str | None:
    info = msgspec.inspect.type_info(type_)
    for field in getattr(info, "fields", ()):
        if field.encode_name == name:
            return _described(field.type)
    return None


def _described(info: msgspec.inspect.Type) -> str | None:
    if isinstance(info, msgspec.inspect.Metadata):
        description = (info.extra_json_schema or {}).get("description")
        return description if description is not None else _described(info.type)
    if isinstance(info, msgspec.inspect.UnionType):
        for member in info.types:
            if (description := _described(member)) is not None:
                return description
    return None
