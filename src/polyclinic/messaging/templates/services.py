"""Message templates: the defaults every clinic starts with, and a clinic's own subject and
body per kind, channel and locale, rendered in Jinja's sandbox.

A template is checked when it is saved and on preview: it must parse, and render with the
sample values of its kind within the sandbox's bounds (`sandbox.py`); a name its kind does
not provide is refused there, not at the first send. At send time the same bounds hold, and
a failure is an `InvalidInput` that the delivery records as its reason.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.db.base import utcnow
from polyclinic.errors import FieldError, InvalidInput, NotFound
from polyclinic.messaging.templates.defaults import DEFAULTS, SAMPLES, Default
from polyclinic.messaging.templates.models import MessageTemplate
from polyclinic.messaging.templates.sandbox import TemplateFailed, render

CHANNELS = ("email", "sms", "whatsapp")


BASE_LOCALE = "en"


@dataclass(frozen=True)
class Rendered:
    subject: str | None
    body: str


@dataclass(frozen=True)
class Effective:
    kind: str
    channel: str
    locale: str
    subject: str | None
    body: str
    overridden: bool


def render_text(source: str, context: dict[str, Any], field: str) -> str:
    """The template rendered; a template that cannot be is refused with 422 naming the
    field, the line and what is wrong, e.g. `is too large (line 2): …`."""
    try:
        return render(source, context)
    except TemplateFailed as exc:
        where = f" at line {exc.line}" if exc.line is not None else ""
        raise InvalidInput(
            f"The {field} template {exc.problem}{where}: {exc.reason}",
            [FieldError(field, str(exc))],
        ) from None


def check_kind(kind: str, channel: str) -> Default:
    if kind not in DEFAULTS:
        raise NotFound(f"No message kind {kind!r}; the kinds are {', '.join(DEFAULTS)}")
    if channel not in CHANNELS:
        raise NotFound(f"No channel {channel!r}; the channels are {', '.join(CHANNELS)}")
    return DEFAULTS[kind]


def locales_to_try(locale: str) -> list[str]:
    """`de-AT` falls back to `de`, then to the base locale."""
    tried = [locale]
    if "-" in locale:
        tried.append(locale.split("-", 1)[0])
    if BASE_LOCALE not in tried:
        tried.append(BASE_LOCALE)
    return tried


class Templates:
    """The templates of the session's clinic."""

    def __init__(self, session: AsyncSession) -> None:
        self.db = session

    async def effective(self, kind: str, channel: str, locale: str) -> Effective:
        default = check_kind(kind, channel)
        tried = locales_to_try(locale)
        rows = {
            row.locale: row
            for row in await self.db.scalars(
                select(MessageTemplate).where(
                    MessageTemplate.kind == kind,
                    MessageTemplate.channel == channel,
                    MessageTemplate.locale.in_(tried),
                )
            )
        }
        for candidate in tried:
            if candidate in rows:
                row = rows[candidate]
                return Effective(kind, channel, candidate, row.subject, row.body, True)
        subject = default.subject if channel == "email" else None
        body = default.email_body if channel == "email" else default.short_body
        return Effective(kind, channel, BASE_LOCALE, subject, body, False)

    async def render(
        self, kind: str, channel: str, locale: str, context: dict[str, Any]
    ) -> Rendered:
        template = await self.effective(kind, channel, locale)
        subject = render_text(template.subject, context, "subject") if template.subject else None
        return Rendered(subject, render_text(template.body, context, "body"))

    async def save(
        self, kind: str, channel: str, locale: str, subject: str | None, body: str
    ) -> Effective:
        check_kind(kind, channel)
        if channel == "email" and not subject:
            raise InvalidInput(
                "An email needs a subject", [FieldError("subject", "is required for email")]
            )
        if channel != "email" and subject:
            raise InvalidInput(
                f"A {channel} message has no subject",
                [FieldError("subject", f"is not used for {channel}")],
            )
        preview(kind, subject, body)  # refuses what would not render
        now = utcnow()
        await self.db.execute(
            insert(MessageTemplate)
            .values(
                id=uuid.uuid4(),
                kind=kind,
                channel=channel,
                locale=locale,
                subject=subject,
                body=body,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_update(
                constraint="uq_message_templates_kind_channel_locale",
                set_={"subject": subject, "body": body, "updated_at": now},
            )
        )
        await self.db.commit()
        return Effective(kind, channel, locale, subject, body, True)

    async def reset(self, kind: str, channel: str, locale: str) -> bool:
        """Back to the default; False when there was no override."""
        check_kind(kind, channel)
        removed = await self.db.scalar(
            delete(MessageTemplate)
            .where(
                MessageTemplate.kind == kind,
                MessageTemplate.channel == channel,
                MessageTemplate.locale == locale,
            )
            .returning(MessageTemplate.id)
        )
        await self.db.commit()
        return removed is not None


def preview(
    kind: str, subject: str | None, body: str, context: dict[str, Any] | None = None
) -> Rendered:
    """Render with the kind's sample values (overridden by any given)."""
    values = {**SAMPLES[kind], **(context or {})}
    rendered_subject = render_text(subject, values, "subject") if subject else None
    return Rendered(rendered_subject, render_text(body, values, "body"))
