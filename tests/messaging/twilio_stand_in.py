"""The part of Twilio's Messages API Polyclinic calls: HTTP basic auth with the account SID
and its auth token, form fields To, From and Body, a repeated idempotency token answered with
the first message, and Twilio's error answers."""

from __future__ import annotations

import base64
import re
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
MESSAGES = re.compile(r"^/2010-04-01/Accounts/(AC[0-9a-f]{32})/Messages\.json$")
UNREACHABLE_NUMBER = "+15005550009"  # Twilio's magic "cannot receive SMS" number


@dataclass
class TwilioMessage:
    sid: str
    account_sid: str
    to: str
    from_: str
    body: str
    idempotency_token: str | None


@dataclass
class TwilioStandIn:
    # account SID -> auth token
    accounts: dict[str, str] = field(default_factory=dict)
    messages: list[TwilioMessage] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add_account(self) -> tuple[str, str]:
        sid, token = "AC" + uuid.uuid4().hex, uuid.uuid4().hex
        self.accounts[sid] = token
        return sid, token

    def handle(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, Any]:
        match = MESSAGES.match(path)
        if method != "POST" or match is None:
            return 404, _error(20404, "The requested resource was not found", 404)
        account = match.group(1)
        if not self._authenticated(account, headers.get("authorization", "")):
            return 401, _error(20003, "Authenticate", 401)
        form = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
        if set(form) != {"To", "From", "Body"} or not form["Body"]:
            return 400, _error(21602, "Message body is required.", 400)
        to, from_ = form["To"], form["From"]
        if to.startswith("whatsapp:") != from_.startswith("whatsapp:"):
            return 400, _error(63007, "Twilio could not find a Channel with the From address", 400)
        if not E164.match(to.removeprefix("whatsapp:")):
            return 400, _error(21211, f"The 'To' number {to} is not a valid phone number.", 400)
        if to.removeprefix("whatsapp:") == UNREACHABLE_NUMBER:
            return 400, _error(21612, "The 'To' phone number is not currently reachable", 400)
        token = headers.get("i-twilio-idempotency-token")
        with self._lock:
            for sent in self.messages:
                if token is not None and sent.idempotency_token == token:
                    return 201, self._resource(sent)
            message = TwilioMessage(
                "SM" + uuid.uuid4().hex, account, to, from_, form["Body"], token
            )
            self.messages.append(message)
        return 201, self._resource(message)

    def _authenticated(self, account: str, authorization: str) -> bool:
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic":
            return False
        user, _, password = base64.b64decode(encoded).decode().partition(":")
        return user == account and self.accounts.get(account) == password

    @staticmethod
    def _resource(message: TwilioMessage) -> dict[str, Any]:
        return {
            "sid": message.sid,
            "account_sid": message.account_sid,
            "to": message.to,
            "from": message.from_,
            "body": message.body,
            "status": "queued",
        }


def _error(code: int, message: str, status: int) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
