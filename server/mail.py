"""Outgoing email: SMTP (aiosmtplib) when configured, otherwise written to the log."""

from __future__ import annotations

import logging
from email.message import EmailMessage
from typing import Protocol

import aiosmtplib

from server.config import SmtpSettings
from server.ops_metrics import deliver

log = logging.getLogger(__name__)


class Mailer(Protocol):
    async def send(self, to: str, subject: str, text: str, html: str | None = None) -> None: ...


def _message(sender: str, to: str, subject: str, text: str, html: str | None) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message.set_content(text)
    if html:
        message.add_alternative(html, subtype="html")
    return message


class SmtpMailer:
    def __init__(self, settings: SmtpSettings) -> None:
        self._settings = settings

    async def send(self, to: str, subject: str, text: str, html: str | None = None) -> None:
        s = self._settings
        await deliver(
            "mail",
            lambda: aiosmtplib.send(
                _message(s.sender, to, subject, text, html),
                hostname=s.host,
                port=s.port,
                username=s.username or None,
                password=s.password or None,
                start_tls=s.starttls,
                timeout=15,
            ),
        )


class LogMailer:
    """The embedded default: the email is logged (without the address) for the operator."""

    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []

    async def send(self, to: str, subject: str, text: str, html: str | None = None) -> None:
        log.info("email not sent (no SMTP configured)", extra={"subject": subject, "body": text})


def make_mailer(settings: SmtpSettings) -> Mailer:
    return SmtpMailer(settings) if settings.host else LogMailer()
