"""Message templates for clinic admins: the effective wording, overrides and previews."""

from typing import Annotated

import msgspec

from polyclinic.messaging.templates.defaults import SAMPLES
from polyclinic.messaging.templates.services import (
    Effective,
)
from polyclinic.web.openapi import published_as

Locale = Annotated[str, msgspec.Meta(pattern=r"^[a-z]{2}(-[A-Z]{2})?$", examples=["en", "de-AT"])]


Text = Annotated[str, msgspec.Meta(min_length=1, max_length=10_000)]


Subject = Annotated[str, msgspec.Meta(min_length=1, max_length=300)]


class TemplateIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    body: Text
    subject: Subject | None = None
    locale: Locale = "en"


class PreviewIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    locale: Locale = "en"
    subject: Subject | None = None
    body: Text | None = None
    values: dict[str, str] = msgspec.field(default_factory=dict)


@published_as("polyclinic.messaging.template_controllers")
class TemplateOut(msgspec.Struct, rename="camel"):
    kind: str
    channel: str
    locale: str
    subject: str | None
    body: str
    overridden: bool
    values: list[str]


@published_as("polyclinic.messaging.template_controllers")
class RenderedOut(msgspec.Struct, rename="camel"):
    subject: str | None
    body: str


def template_out(template: Effective) -> TemplateOut:
    return TemplateOut(
        kind=template.kind,
        channel=template.channel,
        locale=template.locale,
        subject=template.subject,
        body=template.body,
        overridden=template.overridden,
        values=sorted(SAMPLES[template.kind]),
    )
