"""Where and in which language a user may be messaged, from their own preferences.

The rule, per channel:

- email and SMS are on by default; a user who turned one off has opted out, and that channel
  is *refused* ("the patient opted out of sms");
- WhatsApp is opt-in: a user who never turned it on is simply not reached there (no `Reach`
  at all, and nothing to record), while one who turned it on is reached like on SMS;
- an accepted channel still needs an address: the account's email for email, its phone
  number in E.164 form for SMS and WhatsApp (spaces, dashes and brackets are ignored; a
  number without the country code cannot be used), else the channel is refused for that.

A message goes out on a channel exactly when its `Reach.refused` is None; its `address` is
then set. The language is the user's locale, or the clinic's default `en`; templates fall
back from `de-AT` to `de` to `en` on their own.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from polyclinic.identity.accounts.models import (
    DEFAULT_MESSAGE_CHANNELS,
    MESSAGE_CHANNELS,
    User,
    accepted_channels,
)
from polyclinic.identity.permissions.roles import Role
from polyclinic.messaging.channels.providers.base import is_phone_number
from polyclinic.messaging.templates.services import BASE_LOCALE

PHONE_CHANNELS = frozenset({"sms", "whatsapp"})
_SEPARATORS = re.compile(r"[\s().-]")


@dataclass(frozen=True)
class Reach:
    """One channel for one user."""

    channel: str
    # The user's address on this channel; None when the account has none that can be used.
    address: str | None
    # Why no message goes out on this channel (opted out, no phone number), else None.
    refused: str | None

    @property
    def sendable(self) -> bool:
        return self.refused is None


def phone_address(phone: str | None) -> str | None:
    """The phone number in E.164 form (`+43 664 123-4567` -> `+436641234567`), or None."""
    if phone is None:
        return None
    compact = _SEPARATORS.sub("", phone)
    return compact if is_phone_number(compact) else None


def _address(user: User, channel: str) -> str | None:
    return user.email if channel == "email" else phone_address(user.phone)


def _who(user: User) -> str:
    return "patient" if user.role == Role.PATIENT else "recipient"


def reach_for(user: User, channels: Sequence[str] = MESSAGE_CHANNELS) -> list[Reach]:
    """How `user` can be reached on each of `channels` (in that order), by the rule above.
    An opt-in channel the user never turned on is left out. Raises `ValueError` for a name
    that is not a channel."""
    accepted = set(accepted_channels(user))
    reaches = []
    for channel in channels:
        if channel not in MESSAGE_CHANNELS:
            raise ValueError(f"no channel {channel!r}")
        address = _address(user, channel)
        if channel not in accepted:
            if channel not in DEFAULT_MESSAGE_CHANNELS:
                continue  # opt-in, never given
            reaches.append(Reach(channel, address, f"the {_who(user)} opted out of {channel}"))
        elif address is None and channel == "email":
            # A patient registered at the desk may have no email address.
            reaches.append(Reach(channel, None, f"the {_who(user)} has no email address"))
        elif address is None:
            reason = f"the {_who(user)} has no phone number in international form (+country code)"
            reaches.append(Reach(channel, None, reason))
        else:
            reaches.append(Reach(channel, address, None))
    return reaches


def locale_for(user: User) -> str:
    """The language to write to `user` in: their own locale, or the clinic's default."""
    return user.locale or BASE_LOCALE
