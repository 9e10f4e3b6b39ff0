"""Scenarios: connect (idle authenticated sockets), fanout (topic fan-out, product vs ceiling),
ceiling (the bare aiohttp broadcast alone). Clients run in this process; servers in their own."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from array import array
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import psutil

from loadtest.harness import (
    ROOT,
    Report,
    ServerProcess,
    bulk_users,
    ensure_database,
    free_port,
    new_secret,
    percentile,
    raise_file_limit,
    server_env,
)
from protocol.client import GatewayClient, GatewayEvent
from protocol.codec import JsonCodec

LOG_DIR = ROOT / "var" / "loadtest"
TOPIC = "loadtest:fanout"


def _log(path: str) -> Path:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    return LOG_DIR / path


PROGRESS = sys.stdout


def _progress(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=PROGRESS, flush=True)


async def _connect_all(
    url: str,
    users: list[tuple[str, str]],
    session: aiohttp.ClientSession,
    concurrency: int,
    encoding: str,
    on_event=None,
) -> tuple[list[GatewayClient], list[BaseException], float]:
    sem = asyncio.Semaphore(concurrency)
    clients: list[GatewayClient] = []
    errors: list[BaseException] = []

    async def one(token: str) -> None:
        async with sem:
            client = GatewayClient(
                url,
                token,
                session=session,
                encoding=encoding,
                reconnect=False,
                on_event=on_event,
            )
            try:
                await client.connect()
                clients.append(client)
                if len(clients) % 2000 == 0:
                    rate = len(clients) / (time.perf_counter() - started)
                    _progress(f"  {len(clients)} connected ({rate:.0f}/s so far)")
            except Exception as exc:
                errors.append(exc)

    started = time.perf_counter()
    await asyncio.gather(*(one(token) for _, token in users))
    return clients, errors, time.perf_counter() - started


async def _close_all(clients: list, concurrency: int = 500) -> None:
    sem = asyncio.Semaphore(concurrency)

    async def one(client) -> None:
        async with sem:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.close(), 10)

    await asyncio.gather(*(one(c) for c in clients))


async def _server_sockets(server: ServerProcess, session: aiohttp.ClientSession) -> float:
    async with session.get(f"{server.url}/metrics") as resp:
        text = await resp.text()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("nexgate_gateway_connections{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


# connect ---------------------------------------------------------------------------------------


async def connect(args) -> Report:
    fd_limit = raise_file_limit()
    report = Report(
        "connect",
        {
            "clients": args.clients,
            "concurrency": args.concurrency,
            "hold_s": args.hold,
            "heartbeat_interval_ms": args.heartbeat_ms,
            "encoding": args.encoding,
            "fd_limit": fd_limit,
        },
    )
    await asyncio.to_thread(ensure_database, args.database_url)
    secret = new_secret()
    started = time.perf_counter()
    users = await bulk_users(args.database_url, args.clients + 20, secret)
    report.results["users_ready_s"] = time.perf_counter() - started
    warmup, users = users[:20], users[20:]
    env = server_env(args.database_url, secret, {"heartbeat_interval_ms": args.heartbeat_ms})
    server = ServerProcess("server", free_port(), env, _log("connect-server.log"))
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    session = aiohttp.ClientSession(connector=connector)
    clients: list[GatewayClient] = []
    try:
        await server.wait_ready()
        url = f"{server.url}/api/gateway/ws"
        # Warm up (imports, pools, allocator) so the baseline is a running server.
        warm, _, _ = await _connect_all(url, warmup, session, 20, args.encoding)
        await _close_all(warm)
        await asyncio.sleep(1)
        baseline = server.rss()
        _progress(f"server up, baseline RSS {baseline / 2**20:.1f} MiB; connecting")
        cpu0, me_cpu0 = server.cpu_seconds(), sum(psutil.Process().cpu_times()[:2])
        clients, errors, elapsed = await _connect_all(
            url, users, session, args.concurrency, args.encoding
        )
        connect_cpu = (server.cpu_seconds() - cpu0) / elapsed
        client_connect_cpu = (sum(psutil.Process().cpu_times()[:2]) - me_cpu0) / elapsed
        rss_connected = server.rss()
        _progress(f"{len(clients)} identified in {elapsed:.1f}s ({len(errors)} failed); holding")
        cpu_before, hold_started = server.cpu_seconds(), time.monotonic()
        await asyncio.sleep(args.hold)
        held_s = time.monotonic() - hold_started
        server_cpu = (server.cpu_seconds() - cpu_before) / held_s
        rss_held = server.rss()
        alive = sum(1 for c in clients if c._runner is not None and not c._runner.done())
        sockets = await _server_sockets(server, session)
        sent = sum(c.heartbeats_sent for c in clients)
        acks = sum(c.heartbeat_acks for c in clients)
        n = max(1, len(clients))
        report.results.update(
            {
                "connected": len(clients),
                "failed": len(errors),
                "first_error": repr(errors[0])[:200] if errors else "",
                "connect_s": elapsed,
                "connects_per_s": len(clients) / elapsed if elapsed else 0.0,
                "server_cpu_while_connecting_pct": 100 * connect_cpu,
                "client_cpu_while_connecting_pct": 100 * client_connect_cpu,
                "server_rss_baseline_mib": baseline / 2**20,
                "server_rss_connected_mib": rss_connected / 2**20,
                "server_rss_after_hold_mib": rss_held / 2**20,
                "server_kib_per_socket": (rss_held - baseline) / n / 1024,
                "server_sockets_reported": int(sockets),
                "alive_after_hold": alive,
                "heartbeats_sent": sent,
                "heartbeat_acks": acks,
                "heartbeats_per_client": sent / n,
                "heartbeat_ack_ratio": acks / sent if sent else 0.0,
                "server_cpu_while_idle_pct": 100 * server_cpu,
                "client_rss_mib": psutil.Process().memory_info().rss / 2**20,
            }
        )
    finally:
        await _close_all(clients)
        await session.close()
        server.stop()
    return report


# fan-out ---------------------------------------------------------------------------------------


class Recorder:
    """Counts deliveries per tick and records publish→receive latency."""

    def __init__(self, receivers: int) -> None:
        self.receivers = receivers
        self.phase = 0
        self.counts: dict[int, int] = {}
        self.completed = 0
        self.deliveries = 0
        self.latencies = array("d")
        self.progress = asyncio.Event()

    def reset(self, phase: int) -> None:
        self.phase = phase
        self.counts = {}
        self.completed = 0
        self.deliveries = 0
        self.latencies = array("d")

    def deliver(self, data: dict[str, Any]) -> None:
        now = time.time()
        if data.get("p") != self.phase:
            return
        i = data["i"]
        self.deliveries += 1
        self.latencies.append(now - data["ts"])
        count = self.counts.get(i, 0) + 1
        self.counts[i] = count
        if count == self.receivers:
            self.completed += 1
            self.progress.set()


async def _publish_phase(
    control: aiohttp.ClientWebSocketResponse,
    rec: Recorder,
    phase: int,
    duration_s: float,
    *,
    window: int | None = None,
    rate: float | None = None,
    server: ServerProcess | None = None,
) -> dict[str, Any]:
    """Closed loop (at most `window` ticks not yet delivered everywhere) or open loop at
    `rate` ticks/s, for `duration_s`; then a grace period for stragglers."""
    rec.reset(phase)
    cpu0 = server.cpu_seconds() if server else 0.0
    me = psutil.Process()
    me_cpu0 = sum(me.cpu_times()[:2])
    started = time.perf_counter()
    end = started + duration_s
    published = 0
    stalls = 0
    while True:
        now = time.perf_counter()
        if now >= end:
            break
        if window is not None:
            while published - rec.completed >= window:
                rec.progress.clear()
                try:
                    await asyncio.wait_for(rec.progress.wait(), 2)
                except TimeoutError:
                    stalls += 1
                    break
        else:
            due = started + published / rate
            if due > now:
                await asyncio.sleep(due - now)
        await control.send_str(
            orjson.dumps({"p": phase, "i": published, "ts": time.time()}).decode()
        )
        published += 1
    send_elapsed = time.perf_counter() - started
    grace_end = time.perf_counter() + 5
    while rec.completed < published and time.perf_counter() < grace_end:
        rec.progress.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(rec.progress.wait(), 0.5)
    elapsed = time.perf_counter() - started
    expected = published * rec.receivers
    lat = sorted(rec.latencies)
    return {
        "published": published,
        "publish_rate_per_s": published / send_elapsed,
        "deliveries": rec.deliveries,
        "deliveries_per_s": rec.deliveries / elapsed,
        "dropped": expected - rec.deliveries,
        "latency_p50_ms": 1000 * percentile(lat, 50),
        "latency_p95_ms": 1000 * percentile(lat, 95),
        "latency_p99_ms": 1000 * percentile(lat, 99),
        "latency_max_ms": 1000 * (lat[-1] if lat else float("nan")),
        "server_cpu_pct": 100 * (server.cpu_seconds() - cpu0) / elapsed if server else 0.0,
        "client_cpu_pct": 100 * (sum(me.cpu_times()[:2]) - me_cpu0) / elapsed,
        "stalls": stalls,
    }


async def _run_fanout_phases(args, control, rec, server) -> dict[str, Any]:
    out: dict[str, Any] = {}
    phase = getattr(args, "phase", "both")
    if phase in ("both", "max"):
        _progress(f"max-rate phase (closed loop, window {args.window}) for {args.duration}s")
        out["max"] = await _publish_phase(
            control, rec, 1, args.duration, window=args.window, server=server
        )
    if phase in ("both", "rate"):
        rate = args.rate or max(1.0, out["max"]["publish_rate_per_s"] / 2)
        _progress(f"latency phase at {rate:.1f} ticks/s for {args.duration}s")
        half = await _publish_phase(control, rec, 2, args.duration, rate=rate, server=server)
        out["at_rate"] = {"rate_per_s": rate, **half}
    return out


async def product_fanout(args, users: list[tuple[str, str]], secret: str) -> dict[str, Any]:
    env = server_env(args.database_url, secret, {"frame_budget": 100000})
    server = ServerProcess("loadtest.server", free_port(), env, _log("fanout-server.log"))
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    rec = Recorder(len(users))
    clients: list[GatewayClient] = []

    def on_event(event: GatewayEvent) -> None:
        if event.topic == TOPIC:
            rec.deliver(event.data)

    try:
        await server.wait_ready()
        url = f"{server.url}/api/gateway/ws"
        clients, errors, connect_s = await _connect_all(
            url, users, session, args.concurrency, args.encoding, on_event
        )
        if errors:
            raise RuntimeError(f"{len(errors)} clients failed to connect: {errors[0]!r}")
        sem = asyncio.Semaphore(args.concurrency)

        async def sub(client: GatewayClient) -> None:
            async with sem:
                await client.subscribe(TOPIC)

        await asyncio.gather(*(sub(c) for c in clients))
        _progress(f"product: {len(clients)} subscribers ready in {connect_s:.1f}s")
        control = await session.ws_connect(f"{server.url}/loadtest/control")
        result = await _run_fanout_phases(args, control, rec, server)
        await control.close()
        return result
    finally:
        await _close_all(clients)
        await session.close()
        server.stop()


async def ceiling_fanout(args, receivers: int) -> dict[str, Any]:
    env = server_env(args.database_url, "unused", {})
    server = ServerProcess("loadtest.ceiling", free_port(), env, _log("ceiling-server.log"))
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    rec = Recorder(receivers)
    sockets: list[aiohttp.ClientWebSocketResponse] = []
    readers: list[asyncio.Task] = []

    def on_event(event: GatewayEvent) -> None:
        if event.topic == TOPIC:
            rec.deliver(event.data)

    async def read(ws: aiohttp.ClientWebSocketResponse) -> None:
        # The same per-frame work as the reference client's read loop (decode and validate
        # the envelope, build the event, hand it on), so the ratio compares the servers.
        decode = JsonCodec.decode
        async for msg in ws:
            if msg.type is aiohttp.WSMsgType.TEXT:
                frame = decode(msg.data)
                on_event(GatewayEvent(frame["t"], frame["d"], frame.get("s"), frame.get("topic")))

    try:
        await server.wait_ready()
        sem = asyncio.Semaphore(args.concurrency)

        async def one() -> None:
            async with sem:
                ws = await session.ws_connect(f"{server.url}/ws", max_msg_size=0)
                sockets.append(ws)
                readers.append(asyncio.create_task(read(ws)))

        await asyncio.gather(*(one() for _ in range(receivers)))
        _progress(f"ceiling: {len(sockets)} receivers ready")
        control = await session.ws_connect(f"{server.url}/control")
        result = await _run_fanout_phases(args, control, rec, server)
        await control.close()
        return result
    finally:
        for ws in sockets:
            with contextlib.suppress(Exception):
                await ws.close()
        for task in readers:
            task.cancel()
        await session.close()
        server.stop()


def _fanout_params(args, name: str) -> dict[str, Any]:
    return {
        "subscribers": args.clients,
        "duration_s_per_phase": args.duration,
        "window": args.window,
        "rate": args.rate or "max/2 (measured)",
        "encoding": args.encoding,
        "fd_limit": raise_file_limit(),
        "scenario": name,
    }


def _side_argv(args, scenario: str, phase: str, rate: float) -> list[str]:
    argv = [sys.executable, "-m", "loadtest", scenario, "--machine", "--phase", phase]
    argv += ["--clients", str(args.clients), "--concurrency", str(args.concurrency)]
    argv += ["--encoding", args.encoding, "--database-url", args.database_url]
    argv += ["--duration", str(args.duration), "--window", str(args.window)]
    argv += ["--rate", str(rate)]
    return argv + (["--no-ceiling"] if scenario == "fanout" else [])


async def _run_side(args, scenario: str, phase: str, rate: float = 0) -> dict[str, Any]:
    """One side and phase in a fresh client process against a fresh server: a phase that
    saturates the (single, Python) client process leaves its sockets' receive queues full,
    which would slow the next phase for reasons that have nothing to do with the server."""
    proc = await asyncio.create_subprocess_exec(
        *_side_argv(args, scenario, phase, rate), cwd=ROOT, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"the {scenario} side failed ({proc.returncode})")
    results = json.loads(out.decode().strip().splitlines()[-1])["results"]
    return results["product" if scenario == "fanout" else "ceiling"]


async def fanout(args) -> Report:
    report = Report("fanout", _fanout_params(args, "fanout"))
    if args.no_ceiling:  # one side, in this process
        await asyncio.to_thread(ensure_database, args.database_url)
        secret = new_secret()
        users = await bulk_users(args.database_url, args.clients, secret)
        report.results["product"] = _flatten(await product_fanout(args, users, secret))
        return report
    _progress("max rates: ceiling (bare aiohttp broadcast), then the gateway")
    ceiling_max = await _run_side(args, "ceiling", "max")
    product_max = await _run_side(args, "fanout", "max")
    c_rate = args.rate or max(1.0, ceiling_max["max.publish_rate_per_s"] / 2)
    p_rate = args.rate or max(1.0, product_max["max.publish_rate_per_s"] / 2)
    _progress(f"latency: ceiling at {c_rate:.1f}/s, gateway at {p_rate:.1f}/s and {c_rate:.1f}/s")
    ceiling_at = await _run_side(args, "ceiling", "rate", c_rate)
    product_at = await _run_side(args, "fanout", "rate", p_rate)
    report.results["product"] = {**product_max, **product_at}
    if not args.rate and abs(p_rate - c_rate) > 0.5:
        same = await _run_side(args, "fanout", "rate", c_rate)
        report.results["product_at_ceiling_half_rate"] = same
    report.results["ceiling"] = {**ceiling_max, **ceiling_at}
    report.results["throughput_ratio_vs_ceiling"] = (
        product_max["max.deliveries_per_s"] / ceiling_max["max.deliveries_per_s"]
    )
    per_p = product_max["max.server_cpu_pct"] / product_max["max.deliveries_per_s"]
    per_c = ceiling_max["max.server_cpu_pct"] / ceiling_max["max.deliveries_per_s"]
    report.results["server_cpu_per_delivery_ratio_vs_ceiling"] = per_p / per_c
    return report


async def ceiling(args) -> Report:
    report = Report("ceiling", _fanout_params(args, "ceiling"))
    report.results["ceiling"] = _flatten(await ceiling_fanout(args, args.clients))
    return report


def _flatten(result: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for phase, values in result.items():
        for key, value in values.items():
            flat[f"{phase}.{key}"] = value
    return flat
