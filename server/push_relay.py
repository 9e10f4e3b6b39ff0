"""Transports for the push sender interface of server/domain/push.py."""

from __future__ import annotations

import hashlib
import hmac
import logging

import aiohttp
import orjson

from server.config import PushSettings
from server.domain.push import LoggingPushSender, PushMessage, PushSender
from server.jobs.registry import PermanentJobError
from server.ops_metrics import deliver

log = logging.getLogger(__name__)


class WebhookPushSender:
    """JSON POST of each PushMessage to a push relay. 2xx: delivered. 408 / 429 / 5xx /
    network errors: raised, so the job is retried with backoff. Other 4xx: the relay refuses
    this message for good (PermanentJobError, dead-lettered at once).

    With a secret, `X-Nexgate-Signature: sha256=<hex HMAC-SHA256 of the body>` lets the relay
    check the request came from this server."""

    def __init__(self, url: str, *, secret: str = "", timeout_s: float = 10) -> None:
        self.url = url
        self._secret = secret.encode()
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def send(self, message: PushMessage) -> None:
        await deliver("push", lambda: self._send(message))

    async def _send(self, message: PushMessage) -> None:
        body = orjson.dumps(message.to_json())
        headers = {"Content-Type": "application/json", "User-Agent": "nexgate-push/1"}
        if self._secret:
            digest = hmac.new(self._secret, body, hashlib.sha256).hexdigest()
            headers["X-Nexgate-Signature"] = f"sha256={digest}"
        async with self._client().post(self.url, data=body, headers=headers) as resp:
            if 200 <= resp.status < 300:
                return
            text = (await resp.text())[:200]
            if resp.status in (408, 429) or resp.status >= 500:
                raise RuntimeError(f"push relay answered {resp.status}: {text}")
            raise PermanentJobError(f"push relay refused the message ({resp.status}): {text}")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def make_push_sender(settings: PushSettings) -> PushSender:
    if settings.webhook_url:
        return WebhookPushSender(
            settings.webhook_url,
            secret=settings.webhook_secret,
            timeout_s=settings.webhook_timeout_s,
        )
    return LoggingPushSender()
