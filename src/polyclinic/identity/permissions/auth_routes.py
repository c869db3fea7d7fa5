"""What every /api/v1/auth route declares: its permission and the errors it may answer."""

from __future__ import annotations

from polyclinic.web.openapi import error_responses

# Every /auth route is rate-limited (429); refresh refuses a suspended account (403).
PUBLIC_WRITE = error_responses(400, 401, 403, 409, 422, 429)
SIGNED_IN = error_responses(400, 401, 403, 404, 409, 422, 429)
UPDATE_OWN = {"permission": ("account", "update_own")}
OWN_SESSIONS = {"permission": ("sessions", "manage_own")}
OWN_MFA = {"permission": ("account", "mfa")}


def public(action: str) -> dict[str, object]:
    return {"permission": ("account", action)}
