"""A reference asyncio client of the gateway (aiohttp).

    async with GatewayClient("http://127.0.0.1:8080", token) as gw:
        me = gw.user
        result = await gw.call("presence.query", user_ids=[other_id])
        await gw.subscribe("poll:0190...")
        async for event in gw.events():
            print(event.type, event.seq, event.data)

It identifies, heartbeats at the server's interval (a missed ack means a dead link: it drops
the socket), reconnects with jittered exponential backoff and resumes from the last `s` it saw,
so no event is lost or repeated across a reconnect (to any node). When the server says the
session cannot be resumed it identifies afresh, re-subscribes its topics and yields a
`gateway.invalid_session` event: refetch state over HTTP then.

`token` may be a string or a callable returning one (sync or async), called on every
(re)connect, so an app can hand in a freshly refreshed access token.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from protocol import frames
from protocol.codec import DecodeError, get_codec
from protocol.constants import FATAL_CLOSE_CODES, CloseCode, Op

log = logging.getLogger("nexgate.client")

INVALID_SESSION_EVENT = "gateway.invalid_session"

TokenSource = str | Callable[[], str | Awaitable[str]]


class GatewayError(Exception):
    pass


class CallError(GatewayError):
    def __init__(self, code: str, message: str, errors: dict | None = None, **extra: Any):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.errors = errors or {}
        self.extra = extra


class ConnectionClosed(GatewayError):
    def __init__(self, code: int | None, reason: str = ""):
        super().__init__(f"gateway closed ({code}): {reason}")
        self.code = code
        self.reason = reason


@dataclass(slots=True)
class GatewayEvent:
    type: str
    data: dict[str, Any]
    seq: int | None = None  # user events carry a seq; topic and presence events do not
    topic: str | None = None


class GatewayClient:
    def __init__(
        self,
        url: str,
        token: TokenSource,
        *,
        encoding: str = "json",
        reconnect: bool = True,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        max_reconnects: int | None = None,
        session: aiohttp.ClientSession | None = None,
        on_event: Callable[[GatewayEvent], Any] | None = None,
        call_timeout_s: float = 30.0,
        heartbeat: bool = True,
    ) -> None:
        if url.startswith(("http://", "https://")) and "/api/gateway/ws" not in url:
            url = url.rstrip("/") + "/api/gateway/ws"
        sep = "&" if "?" in url else "?"
        self.url = f"{url}{sep}encoding={encoding}" if "encoding=" not in url else url
        self.codec = get_codec(encoding)
        self._token = token
        self.reconnect = reconnect
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.max_reconnects = max_reconnects
        self.call_timeout_s = call_timeout_s
        self.heartbeat = heartbeat
        self.on_event = on_event
        self._session = session
        self._own_session = session is None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._ids = itertools.count(1)
        self._replies: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._events: asyncio.Queue[GatewayEvent | BaseException] = asyncio.Queue()
        self._ready = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._closing = False
        self.topics: set[str] = set()
        self.session_id: str | None = None
        self.seq = 0
        self.epoch: str | None = None  # the log `seq` counts in (from ready / resumed)
        self.user: dict[str, Any] | None = None
        self.hello: dict[str, Any] = {}
        self.reconnects = 0
        self.resumes = 0
        self.heartbeats_sent = 0
        self.heartbeat_acks = 0
        self.last_close: tuple[int | None, str] | None = None

    # public API -----------------------------------------------------------------------------

    async def __aenter__(self) -> GatewayClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def connect(self) -> dict[str, Any]:
        """Open the socket and identify; returns the `ready` payload."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        ready = await self._open(resume=False)
        self._runner = asyncio.get_running_loop().create_task(self._run())
        return ready

    async def call(self, method: str, **params: Any) -> Any:
        """Run a gateway method; returns its result or raises CallError."""
        body = await self._request(lambda cid: frames.call(cid, method, params))
        if body.get("ok"):
            return body.get("result")
        error = body.get("error") or {}
        raise CallError(
            error.get("code", "error"),
            error.get("message", ""),
            error.get("errors"),
            **{k: v for k, v in error.items() if k not in ("code", "message", "errors")},
        )

    async def subscribe(self, topic: str) -> Any:
        body = await self._request(lambda cid: frames.subscribe(topic, cid))
        if not body.get("ok"):
            error = body.get("error") or {}
            raise CallError(error.get("code", "error"), error.get("message", ""))
        self.topics.add(topic)
        return body.get("result")

    async def unsubscribe(self, topic: str) -> Any:
        self.topics.discard(topic)
        body = await self._request(lambda cid: frames.unsubscribe(topic, cid))
        return body.get("result")

    async def events(self) -> AsyncIterator[GatewayEvent]:
        """Every event in order; ends (raising) when the client gives up for good."""
        while True:
            item = await self._events.get()
            if isinstance(item, BaseException):
                raise item
            yield item

    async def next_event(self, wait_s: float = 5.0) -> GatewayEvent:
        item = await asyncio.wait_for(self._events.get(), wait_s)
        if isinstance(item, BaseException):
            raise item
        return item

    async def send_raw(self, frame: dict[str, Any]) -> None:
        """Send any envelope (for tests and tools)."""
        assert self._ws is not None
        await self._send(self._ws, frame)

    async def drop(self) -> None:
        """Drop the socket without a close handshake, as a lost network would (tests, tools)."""
        if self._ws is not None:
            response = self._ws._response
            connection = response.connection if response is not None else None
            transport = connection.transport if connection is not None else None
            if transport is not None:
                transport.abort()

    async def close(self) -> None:
        self._closing = True
        if self._ws is not None and not self._ws.closed:
            with contextlib.suppress(Exception):
                await self._ws.close()
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._runner
        self._fail_pending(ConnectionClosed(1000, "client closed"))
        if self._own_session and self._session is not None:
            await self._session.close()

    # internals -----------------------------------------------------------------------------

    async def _get_token(self) -> str:
        token = self._token() if callable(self._token) else self._token
        if inspect.isawaitable(token):
            token = await token
        return str(token)

    async def _send(self, ws: aiohttp.ClientWebSocketResponse, frame: dict[str, Any]) -> None:
        data = self.codec.encode(frame)
        if self.codec.binary:
            await ws.send_bytes(data)
        else:
            await ws.send_str(data.decode())

    async def _recv(self, ws: aiohttp.ClientWebSocketResponse, wait_s: float | None):
        msg = await ws.receive(timeout=wait_s)
        if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
            return self.codec.decode(msg.data)
        code = ws.close_code
        raise ConnectionClosed(code, str(msg.extra or ""))

    async def _request(self, build: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
        await asyncio.wait_for(self._ready.wait(), self.call_timeout_s)
        call_id = f"c{next(self._ids)}"
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[call_id] = fut
        try:
            assert self._ws is not None
            await self._send(self._ws, build(call_id))
            return await asyncio.wait_for(fut, self.call_timeout_s)
        finally:
            self._replies.pop(call_id, None)

    async def _open(self, *, resume: bool) -> dict[str, Any]:
        """Connect, read hello, identify or resume; returns ready / resumed."""
        assert self._session is not None
        ws = await self._session.ws_connect(self.url, autoping=True, max_msg_size=0)
        try:
            hello = await self._recv(ws, 10)
            if hello.get("op") != Op.HELLO:
                raise GatewayError(f"expected hello, got {hello.get('op')}")
            self.hello = hello.get("d") or {}
            token = await self._get_token()
            if resume and self.session_id is not None:
                await self._send(ws, frames.resume(token, self.session_id, self.seq, self.epoch))
            else:
                await self._send(ws, frames.identify(token))
            replayed: list[GatewayEvent] = []
            while True:
                frame = await self._recv(ws, 30)
                op = frame.get("op")
                if op == Op.READY:
                    d = frame["d"]
                    invalid = resume and self.session_id is not None
                    self.session_id, self.user, self.seq = d["session_id"], d["user"], d["seq"]
                    self.epoch = d.get("epoch")
                    self._ws = ws
                    if invalid:  # identify after invalid_session: topics must be renewed
                        self._emit(GatewayEvent(INVALID_SESSION_EVENT, {"resumable": False}))
                    return d
                if op == Op.RESUMED:
                    self._ws = ws
                    self.resumes += 1
                    self.epoch = frame["d"].get("epoch", self.epoch)
                    for event in replayed:
                        self._emit(event)
                    return frame["d"]
                if op == Op.INVALID_SESSION:
                    await self._send(ws, frames.identify(token))
                    continue
                if op == Op.EVENT:
                    missed = self._to_event(frame)
                    if missed is not None:
                        replayed.append(missed)
                    continue
                if op == Op.HEARTBEAT_ACK:
                    continue
                raise GatewayError(f"unexpected {op} during handshake")
        except BaseException:
            await ws.close()
            raise

    def _to_event(self, frame: dict[str, Any]) -> GatewayEvent | None:
        seq = frame.get("s")
        if seq is not None:
            if seq <= self.seq:
                return None  # a duplicate (never expected; cheap to guard)
            self.seq = seq
        return GatewayEvent(frame.get("t", ""), frame.get("d") or {}, seq, frame.get("topic"))

    def _emit(self, event: GatewayEvent) -> None:
        if self.on_event is not None:
            self.on_event(event)
        else:
            self._events.put_nowait(event)

    def _fail_pending(self, exc: BaseException) -> None:
        for fut in self._replies.values():
            if not fut.done():
                fut.set_exception(exc)
        self._replies.clear()

    async def _run(self) -> None:
        attempt = 0
        while True:
            self._ready.set()
            error = await self._pump()
            self._ready.clear()
            self._fail_pending(error)
            if self._closing:
                return
            code = error.code if isinstance(error, ConnectionClosed) else None
            if not self.reconnect or code in FATAL_CLOSE_CODES:
                self._events.put_nowait(error)
                return
            while True:
                if self.max_reconnects is not None and attempt >= self.max_reconnects:
                    self._events.put_nowait(error)
                    return
                delay = random.uniform(
                    0, min(self.backoff_max_s, self.backoff_initial_s * 2**attempt)
                )
                attempt += 1
                await asyncio.sleep(delay)
                try:
                    result = await self._open(resume=True)
                except (
                    aiohttp.ClientError,
                    OSError,
                    GatewayError,
                    TimeoutError,
                    DecodeError,
                ) as exc:
                    log.debug("reconnect failed: %s", exc)
                    if isinstance(exc, ConnectionClosed) and exc.code in FATAL_CLOSE_CODES:
                        self._events.put_nowait(exc)
                        return
                    continue
                self.reconnects += 1
                attempt = 0
                if "topics" not in result:  # a fresh identify: renew subscriptions
                    topics = set(self.topics)
                    self._ready.set()
                    for topic in topics:
                        asyncio.get_running_loop().create_task(self._resubscribe(topic))
                break

    async def _resubscribe(self, topic: str) -> None:
        with contextlib.suppress(Exception):
            await self.subscribe(topic)

    async def _pump(self) -> BaseException:
        """Read frames until the socket ends; returns why it ended. Heartbeats run from one
        timer per interval (not a timeout per frame: that is what keeps a busy socket cheap)."""
        ws = self._ws
        assert ws is not None
        interval = (self.hello.get("heartbeat_interval_ms") or 30000) / 1000
        loop = asyncio.get_running_loop()
        state = {"awaiting_ack": False, "dead": False}
        timer: list[asyncio.TimerHandle | None] = [None]
        pending: set[asyncio.Task] = set()

        def spawn(coro) -> None:
            task = loop.create_task(coro)
            pending.add(task)
            task.add_done_callback(pending.discard)

        def beat() -> None:
            if ws.closed:
                return
            if state["awaiting_ack"]:  # no ack for a whole interval: the link is dead
                state["dead"] = True
                spawn(ws.close(code=CloseCode.SESSION_TIMEOUT))
                return
            state["awaiting_ack"] = True
            self.heartbeats_sent += 1
            spawn(self._send(ws, frames.heartbeat(self.seq)))
            timer[0] = loop.call_later(interval, beat)

        if self.heartbeat:  # jitter the first one
            timer[0] = loop.call_later(interval * random.random(), beat)
        decode = self.codec.decode
        try:
            while True:
                msg = await ws.receive()
                if (
                    msg.type is not aiohttp.WSMsgType.TEXT
                    and msg.type is not aiohttp.WSMsgType.BINARY
                ):
                    if state["dead"]:
                        return ConnectionClosed(CloseCode.SESSION_TIMEOUT, "heartbeat not acked")
                    raise ConnectionClosed(ws.close_code, str(msg.extra or ""))
                frame = decode(msg.data)
                op = frame["op"]
                if op == Op.EVENT:
                    event = self._to_event(frame)
                    if event is not None:
                        self._emit(event)
                elif op == Op.REPLY:
                    fut = self._replies.get(str(frame.get("id")))
                    if fut is not None and not fut.done():
                        fut.set_result(frame.get("d") or {})
                elif op == Op.HEARTBEAT_ACK:
                    state["awaiting_ack"] = False
                    self.heartbeat_acks += 1
                elif op == Op.ERROR:
                    log.warning("gateway error: %s", frame.get("d"))
                elif op == Op.RECONNECT:
                    await ws.close()
                    return ConnectionClosed(CloseCode.SERVER_RESTART, "server asked to reconnect")
        except ConnectionClosed as exc:
            self.last_close = (exc.code, exc.reason)
            return exc
        except (aiohttp.ClientError, OSError, DecodeError) as exc:
            self.last_close = (None, str(exc))
            return ConnectionClosed(None, str(exc))
        finally:
            if timer[0] is not None:
                timer[0].cancel()
            for task in pending:
                task.cancel()
