"""The part of the Meta Cloud API Polyclinic calls: a bearer token per business phone number,
a text message payload, and the Graph API's error answers."""

from __future__ import annotations

import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

MESSAGES = re.compile(r"^/v\d+\.\d+/(\d+)/messages$")
RECIPIENT = re.compile(r"^\+?[1-9]\d{6,14}$")
NOT_ON_WHATSAPP = "15005550009"


@dataclass
class MetaMessage:
    id: str
    phone_number_id: str
    to: str
    body: str
    payload: dict[str, Any]


@dataclass
class MetaStandIn:
    # phone number id -> access token
    numbers: dict[str, str] = field(default_factory=dict)
    messages: list[MetaMessage] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add_number(self) -> tuple[str, str]:
        number_id = str(uuid.uuid4().int)[:15]
        token = "EAAG" + uuid.uuid4().hex + uuid.uuid4().hex
        self.numbers[number_id] = token
        return number_id, token

    def handle(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, Any]:
        match = MESSAGES.match(path)
        if method != "POST" or match is None:
            return 400, _error(100, "Unsupported post request", "GraphMethodException")
        number_id = match.group(1)
        token = self.numbers.get(number_id)
        if token is None or headers.get("authorization") != f"Bearer {token}":
            return 401, _error(190, "Invalid OAuth access token.", "OAuthException")
        if not headers.get("content-type", "").startswith("application/json"):
            return 400, _error(100, "Invalid parameter", "OAuthException")
        payload = json.loads(body)
        text = payload.get("text")
        if (
            payload.get("messaging_product") != "whatsapp"
            or payload.get("type") != "text"
            or not isinstance(text, dict)
            or not text.get("body")
        ):
            return 400, _error(100, "Invalid parameter", "OAuthException")
        to = str(payload.get("to", ""))
        if not RECIPIENT.match(to):
            return 400, _error(131009, "Parameter value is not valid", "OAuthException")
        if to.removeprefix("+") == NOT_ON_WHATSAPP:
            return 400, _error(131026, "Message undeliverable", "OAuthException")
        message = MetaMessage("wamid." + uuid.uuid4().hex, number_id, to, text["body"], payload)
        with self._lock:
            self.messages.append(message)
        return 200, {
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": to.removeprefix("+")}],
            "messages": [{"id": message.id}],
        }


def _error(code: int, message: str, kind: str) -> dict[str, Any]:
    return {
        "error": {
            "message": message,
            "type": kind,
            "code": code,
            "fbtrace_id": uuid.uuid4().hex[:20],
        }
    }
