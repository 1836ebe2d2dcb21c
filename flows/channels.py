"""Delivery channels: e-mail over SMTP, SMS through an HTTP gateway, signed webhooks.

Each send carries the outbox-derived key so that a receiver can drop a duplicate (Message-ID for
e-mail, Idempotency-Key for the gateway and webhooks). A channel that fails raises ChannelError;
the relay retries later, the API never waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.policy
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

import aiosmtplib
import httpx

from core.config import Settings
from core.logs import scrub


class ChannelError(Exception):
    """The channel failed (down, 5xx, timeout): try again later."""


class ChannelNotConfigured(Exception):
    """The installation has no such channel (a trial one, say): nothing is sent, and the message it
    would have sent is kept (`subject`, `text`) so that the case shows what the recipient would have
    received."""

    def __init__(self, reason: str, *, subject: str | None = None, text: str | None = None) -> None:
        super().__init__(reason)
        self.subject = subject
        self.text = text


def not_configured(settings: Settings, channel: str) -> str | None:
    """Why `channel` cannot send on this installation, or None if it can (webhooks always can)."""
    if channel == "email" and not settings.smtp_host:
        return "e-mail не настроен (EARLYHELP_SMTP_HOST)"
    if channel == "sms" and not settings.sms_gateway_url:
        return "SMS-шлюз не настроен (EARLYHELP_SMS_GATEWAY_URL)"
    return None


@dataclass
class Attachment:
    filename: str
    content: bytes
    mime: str = "application/pdf"


@dataclass
class Outgoing:
    channel: str  # email / sms / webhook
    address: str
    key: str  # idempotency key, from the outbox id
    subject: str | None = None
    text: str | None = None
    attachments: list[Attachment] = field(default_factory=list)
    body: dict[str, Any] | None = None  # webhook JSON
    secret: str | None = None  # webhook HMAC key


class SmtpPool:
    """A few SMTP connections kept open and reused: one connection per message costs a TCP and
    SMTP handshake each time, and mail servers throttle clients that reconnect for every letter.
    Bound to the event loop that opened it (as every asyncio connection is)."""

    def __init__(self, settings: Settings, size: int = 4) -> None:
        self.settings = settings
        self._idle: list[aiosmtplib.SMTP] = []
        self._slots = asyncio.Semaphore(size)

    async def _connect(self) -> aiosmtplib.SMTP:
        s = self.settings
        client = aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            timeout=s.channel_timeout_seconds,
            start_tls=s.smtp_starttls,  # never None: aiosmtplib would then decide by itself
            username=s.smtp_user or None,
            password=s.smtp_password or None,
        )
        await client.connect()
        return client

    async def send(self, message: EmailMessage) -> None:
        async with self._slots:
            client = self._idle.pop() if self._idle else None
            try:
                if client is not None:
                    try:
                        await client.send_message(message)
                    except (aiosmtplib.SMTPServerDisconnected, ConnectionError):
                        # The server closed the idle connection; the letter was not taken.
                        client = None
                if client is None:
                    client = await self._connect()
                    await client.send_message(message)
            except BaseException:
                if client is not None:
                    client.close()
                raise
            self._idle.append(client)

    async def close(self) -> None:
        while self._idle:
            client = self._idle.pop()
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await client.quit()


# Python's folding of a long non-ASCII header into several encoded words drops the space between
# two of them («из службы» arrived as «изслужбы»): headers stay on one line up to RFC 5322's 998.
MAIL_POLICY = email.policy.SMTP.clone(max_line_length=998)


def build_email(settings: Settings, out: Outgoing) -> EmailMessage:
    message = EmailMessage(policy=MAIL_POLICY)
    message["From"] = settings.mail_from
    message["To"] = out.address
    message["Subject"] = out.subject or ""
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = f"<{out.key}@earlyhelp>"
    message.set_content(out.text or "")
    for attachment in out.attachments:
        maintype, subtype = attachment.mime.split("/", 1)
        message.add_attachment(
            attachment.content, maintype=maintype, subtype=subtype, filename=attachment.filename
        )
    return message


async def send_email(settings: Settings, pool: SmtpPool, out: Outgoing) -> None:
    if reason := not_configured(settings, "email"):
        raise ChannelNotConfigured(reason, subject=out.subject, text=out.text)
    message = build_email(settings, out)
    try:
        await pool.send(message)
    except (OSError, aiosmtplib.SMTPException) as error:
        # A server's refusal names the recipient; the text goes to logs (Prefect's) and the record.
        raise ChannelError(f"SMTP: {scrub(str(error))}") from error


async def send_sms(settings: Settings, client: httpx.AsyncClient, out: Outgoing) -> None:
    if reason := not_configured(settings, "sms"):
        raise ChannelNotConfigured(reason, text=out.text)
    headers = {"Idempotency-Key": out.key}
    if settings.sms_gateway_token:
        headers["Authorization"] = f"Bearer {settings.sms_gateway_token}"
    try:
        response = await client.post(
            settings.sms_gateway_url,
            json={"to": out.address, "text": out.text, "id": out.key},
            headers=headers,
        )
    except httpx.HTTPError as error:
        raise ChannelError(f"SMS-шлюз: {type(error).__name__}: {scrub(str(error))}") from error
    if response.status_code >= 300:
        raise ChannelError(f"SMS-шлюз ответил {response.status_code}")


def sign(secret: str, timestamp: str, raw: bytes) -> str:
    """HMAC-SHA256 over "<timestamp>.<body>", hex; the receiver recomputes it with the shared secret."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + raw, hashlib.sha256).hexdigest()


async def send_webhook(client: httpx.AsyncClient, out: Outgoing) -> None:
    raw = json.dumps(out.body, ensure_ascii=False, sort_keys=True).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "Idempotency-Key": out.key,
        "X-Earlyhelp-Delivery": out.key,
        "X-Earlyhelp-Timestamp": timestamp,
    }
    if out.secret:
        headers["X-Earlyhelp-Signature"] = "sha256=" + sign(out.secret, timestamp, raw)
    try:
        response = await client.post(out.address, content=raw, headers=headers)
    except httpx.HTTPError as error:
        raise ChannelError(f"webhook: {type(error).__name__}: {scrub(str(error))}") from error
    if response.status_code >= 300:
        raise ChannelError(f"webhook ответил {response.status_code}")
