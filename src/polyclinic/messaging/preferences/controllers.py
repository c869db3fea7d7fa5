"""The signed-in user's message preferences: the channels they accept and their language."""

from __future__ import annotations

from collections import Counter

from litestar import Controller, get, put
from litestar.di import NamedDependency
from litestar.params import JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.errors import FieldError, InvalidInput
from polyclinic.identity.accounts.models import MESSAGE_CHANNELS, User, accepted_channels
from polyclinic.identity.accounts.schemas import MessagePreferences, message_preferences
from polyclinic.identity.trail.services import record
from polyclinic.messaging.preferences.services import PHONE_CHANNELS, phone_address
from polyclinic.web.caller import Caller
from polyclinic.web.envelope import Envelope, ok
from polyclinic.web.openapi import error_responses

PREFERENCES_CHANGED = "message_preferences_changed"


def apply_preferences(user: User, wanted: MessagePreferences) -> bool:
    """Set the user's preferences to `wanted`; True when that changed them. Raises
    `InvalidInput` and changes nothing when they cannot be kept."""
    counts = Counter[str](wanted.channels)
    errors = []
    repeated = [c for c in MESSAGE_CHANNELS if counts[c] > 1]
    if repeated:
        errors.append(FieldError("channels", f"lists {' and '.join(repeated)} more than once"))
    # Only a channel being switched on needs the number: the defaults (SMS included) can be
    # sent back unchanged by a user without one; delivery skips what it cannot reach.
    accepted = accepted_channels(user)
    by_phone = [
        c for c in MESSAGE_CHANNELS if counts[c] and c in PHONE_CHANNELS and c not in accepted
    ]
    if by_phone and phone_address(user.phone) is None:
        need = "needs" if len(by_phone) == 1 else "need"
        errors.append(
            FieldError(
                "channels",
                f"{' and '.join(by_phone)} {need} a phone number in international form on the "
                "account (e.g. +43 664 1234567): set it first with PATCH /api/v1/auth/me",
            )
        )
    if errors:
        raise InvalidInput(
            "The preferences were not saved: channels " + "; ".join(e.message for e in errors),
            errors,
        )
    ordered = [c for c in MESSAGE_CHANNELS if counts[c]]
    changed = ordered != accepted or wanted.locale != user.locale
    user.message_channels = ordered
    user.locale = wanted.locale
    return changed


class PreferencesController(Controller):
    path = "/me/preferences"
    tags = ["clinic: auth"]

    @get(
        "/",
        summary="My message preferences: the channels I accept messages on, my language",
        opt={"permission": ("account", "read_own")},
        responses=error_responses(401, 403),
    )
    async def read_preferences(self, me: NamedDependency[User]) -> Envelope[MessagePreferences]:
        return ok(message_preferences(me))

    @put(
        "/",
        summary="Choose the channels I accept messages on (email and SMS are on until turned "
        "off, WhatsApp needs turning on) and my language",
        opt={"permission": ("account", "update_own")},
        responses=error_responses(400, 401, 403, 422),
    )
    async def update_preferences(
        self,
        data: JSONBody[MessagePreferences],
        me: NamedDependency[User],
        clinic_db: NamedDependency[AsyncSession],
        caller: NamedDependency[Caller],
    ) -> Envelope[MessagePreferences]:
        if apply_preferences(me, data):
            record(
                clinic_db,
                caller,
                PREFERENCES_CHANGED,
                user_id=me.id,
                email=me.email,
                channels=me.message_channels,
                locale=me.locale,
            )
        await clinic_db.commit()
        return ok(message_preferences(me), "Saved")
