"""A real SMTP server (aiosmtpd) on 127.0.0.1 that takes AUTH with known accounts and keeps
what it receives; a recipient at `refused.test` is refused as a real server would."""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

REFUSED_DOMAIN = "refused.test"


@dataclass
class Received:
    login: str | None
    mail_from: str
    rcpt_tos: list[str]
    message: Message


@dataclass
class SmtpStandIn:
    # login -> password
    accounts: dict[str, str] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    logins: list[tuple[str, bool]] = field(default_factory=list)

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        ok = self.accounts.get(login) == password
        self.logins.append((login, ok))
        return AuthResult(success=ok, handled=False, auth_data=login if ok else None)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.endswith(f"@{REFUSED_DOMAIN}"):
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        self.received.append(
            Received(
                session.auth_data,
                str(envelope.mail_from),
                list(envelope.rcpt_tos),
                message_from_bytes(content),
            )
        )
        return "250 Message accepted for delivery"


class SmtpServer:
    """Serves an SmtpStandIn on a free port, in aiosmtpd's own thread."""

    def __init__(self, stand_in: SmtpStandIn) -> None:
        self.stand_in = stand_in
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.controller = Controller(
            stand_in,
            hostname="127.0.0.1",
            port=self.port,
            authenticator=stand_in.authenticate,
            auth_require_tls=False,  # a local test server; the client's `security` is `none`
            auth_required=True,
        )

    def __enter__(self) -> SmtpServer:
        # aiosmtpd logs each command line at DEBUG, AUTH included: not in these logs.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()
