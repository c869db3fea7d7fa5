"""Message templates for clinic admins: the effective wording, overrides and previews."""

from __future__ import annotations

from typing import Any

from litestar import Controller, delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.status_codes import HTTP_200_OK
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.messaging.templates.defaults import DEFAULTS
from polyclinic.messaging.templates.schemas import (
    Locale,
    PreviewIn,
    RenderedOut,
    TemplateIn,
    TemplateOut,
    template_out,
)
from polyclinic.messaging.templates.services import (
    CHANNELS,
    Templates,
    check_kind,
    preview,
)
from polyclinic.web.envelope import Envelope, ok
from polyclinic.web.openapi import error_responses

READ = error_responses(400, 401, 403, 404)


WRITE = error_responses(400, 401, 403, 404, 422)


class TemplatesController(Controller):
    path = "/messaging/templates"
    tags = ["clinic: messaging"]

    @get(
        "/",
        summary="The wording of every message kind on every channel, for a locale",
        responses=READ,
        opt={"permission": ("messaging", "read")},
    )
    async def list_templates(
        self, clinic_db: NamedDependency[AsyncSession], locale: FromQuery[Locale] = "en"
    ) -> Envelope[list[TemplateOut]]:
        templates = Templates(clinic_db)
        return ok(
            [
                template_out(await templates.effective(kind, channel, locale))
                for kind in DEFAULTS
                for channel in CHANNELS
            ]
        )

    @get(
        "/{kind:str}/{channel:str}",
        summary="One kind's wording on one channel (the clinic's own, else the default)",
        responses=READ,
        opt={"permission": ("messaging", "read")},
    )
    async def get_template(
        self,
        kind: FromPath[str],
        channel: FromPath[str],
        clinic_db: NamedDependency[AsyncSession],
        locale: FromQuery[Locale] = "en",
    ) -> Envelope[TemplateOut]:
        return ok(template_out(await Templates(clinic_db).effective(kind, channel, locale)))

    @put(
        "/{kind:str}/{channel:str}",
        summary="Set the clinic's own wording for a locale (checked by rendering it)",
        responses=WRITE,
        opt={"permission": ("messaging", "manage")},
    )
    async def save_template(
        self,
        kind: FromPath[str],
        channel: FromPath[str],
        data: TemplateIn,
        clinic_db: NamedDependency[AsyncSession],
    ) -> Envelope[TemplateOut]:
        saved = await Templates(clinic_db).save(kind, channel, data.locale, data.subject, data.body)
        return ok(template_out(saved), "Template saved")

    @delete(
        "/{kind:str}/{channel:str}",
        status_code=HTTP_200_OK,
        summary="Go back to the default wording for a locale",
        responses=READ,
        opt={"permission": ("messaging", "manage")},
    )
    async def reset_template(
        self,
        kind: FromPath[str],
        channel: FromPath[str],
        clinic_db: NamedDependency[AsyncSession],
        locale: FromQuery[Locale] = "en",
    ) -> Envelope[TemplateOut]:
        templates = Templates(clinic_db)
        removed = await templates.reset(kind, channel, locale)
        current = await templates.effective(kind, channel, locale)
        return ok(
            template_out(current), "Back to the default" if removed else "Already the default"
        )

    @post(
        "/{kind:str}/{channel:str}/preview",
        status_code=HTTP_200_OK,
        summary="Render a wording (the one given, else the current one) with sample values",
        responses=WRITE,
        opt={"permission": ("messaging", "read")},
    )
    async def preview_template(
        self,
        kind: FromPath[str],
        channel: FromPath[str],
        data: PreviewIn,
        clinic_db: NamedDependency[AsyncSession],
    ) -> Envelope[RenderedOut]:
        check_kind(kind, channel)
        subject: str | None = data.subject
        body = data.body
        if body is None:
            current = await Templates(clinic_db).effective(kind, channel, data.locale)
            subject, body = current.subject, current.body
        values: dict[str, Any] = dict(data.values)
        rendered = preview(kind, subject, body, values)
        return ok(RenderedOut(subject=rendered.subject, body=rendered.body))
