"""The `dm` scenario: direct messages between many connected users, end to end.

    python -m loadtest dm --clients 5000 --rate 500 --duration 30 [--embedded]
                          [--nodes 2 --redis-url redis://127.0.0.1:6379/0] [--drop-fraction 0.2]

N users (bulk-created) are paired into N/2 conversations (opened over HTTP, so through the real
path; reused across runs) and all connect to the gateway with the reference client. Then an
open loop sends `--rate` messages per second for `--duration` seconds, each from a random member
of a random pair to the other (`messages.send` over the sender's socket, with a nonce). The
report measures, per message:

- send → persisted: until the sender's `reply` (the message is committed by then);
- send → delivered: until the recipient's socket yields the `message.created` event (the same
  clock: all clients live in this process).

Midway, `--drop-fraction` of the clients lose their socket at once (as a lost network would);
they reconnect and resume, and the report counts every message that was never delivered, was
delivered twice, or arrived out of order (the conversation's `seq` going back). With `--nodes 2`
the two users of every pair are on different server processes sharing Redis, so each message
crosses nodes. `--embedded` runs the server on the embedded PostgreSQL (started in
var/loadtest-pg) instead of --database-url.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import random
import time
from array import array
from dataclasses import dataclass, field

import aiohttp
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
    run_id,
    server_env,
)
from loadtest.scenarios import _progress
from protocol.client import GatewayClient, GatewayEvent

LOG_DIR = ROOT / "var" / "loadtest"
EMBEDDED_PGDATA = ROOT / "var" / "loadtest-pg"


def add_arguments(cmd) -> None:
    """Options of the dm scenario (on top of the common ones)."""
    cmd.add_argument("--embedded", action="store_true", help="use the embedded PostgreSQL")
    cmd.add_argument("--nodes", type=int, default=1, choices=[1, 2], help="server processes")
    cmd.add_argument("--redis-url", default="redis://127.0.0.1:6379/0", help="for --nodes 2")
    cmd.add_argument(
        "--drop-fraction", type=float, default=0.2, help="clients dropped midway (0: none)"
    )
    cmd.add_argument("--ack", action="store_true", help="recipients ack with messages.delivered")
    cmd.add_argument("--pool-max", type=int, default=10, help="database pool per server")
    cmd.add_argument(
        "--server-root",
        default=None,
        help="run the server of another checkout (a before/after comparison, same harness)",
    )
    cmd.add_argument(
        "--idle-clients",
        type=int,
        default=0,
        help="extra connected users that only listen (e.g. 5000 more for 10,000 sockets)",
    )


@dataclass
class Tracker:
    """What each recipient got, and when."""

    sent_at: dict[str, float] = field(default_factory=dict)
    delivered: dict[str, int] = field(default_factory=dict)
    deliver_latency: array = field(default_factory=lambda: array("d"))
    persist_latency: array = field(default_factory=lambda: array("d"))
    last_seq: dict[tuple[str, str], int] = field(default_factory=dict)
    out_of_order: int = 0
    invalid_sessions: int = 0
    send_errors: int = 0
    first_error: str = ""
    acks: int = 0
    ack_errors: int = 0
    sent_ok: int = 0
    unique: int = 0
    acked: set[str] = field(default_factory=set)
    progress: asyncio.Event = field(default_factory=asyncio.Event)

    def on_created(self, me: str, event: GatewayEvent) -> str | None:
        message = event.data["message"]
        if message["sender_id"] == me:
            return None  # the sender's own devices get it too
        key = message["content"]
        sent = self.sent_at.get(key)
        count = self.delivered.get(key, 0) + 1
        self.delivered[key] = count
        if sent is not None and count == 1:
            self.deliver_latency.append(time.time() - sent)
            self.unique += 1
        conv = (me, event.data["conversation_id"])
        seq = event.data["seq"]
        if seq <= self.last_seq.get(conv, 0):
            self.out_of_order += 1
        self.last_seq[conv] = max(seq, self.last_seq.get(conv, 0))
        self.progress.set()
        return key


async def _embedded_url() -> str:
    from server.store.embedded import start_embedded

    base = await asyncio.to_thread(start_embedded, EMBEDDED_PGDATA)
    return base.replace("/postgres?", "/nexgate_loadtest?", 1)


async def _open_conversations(
    url: str, users: list[tuple[str, str]], concurrency: int
) -> list[tuple[int, int, str]]:
    """Pair users (0,1), (2,3), ... and open each pair's conversation over HTTP."""
    sem = asyncio.Semaphore(concurrency)
    pairs: list[tuple[int, int, str]] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def one(a: int, b: int) -> None:
            async with sem:
                async with session.post(
                    f"{url}/api/conversations",
                    json={"user_id": users[b][0]},
                    headers={"Authorization": f"Bearer {users[a][1]}"},
                ) as resp:
                    body = await resp.json()
                    if resp.status != 200:
                        raise RuntimeError(f"opening a conversation failed: {body}")
                    pairs.append((a, b, body["id"]))

        await asyncio.gather(*(one(i, i + 1) for i in range(0, len(users) - 1, 2)))
    return pairs


def _pg_cpu_seconds() -> float:
    """CPU used so far by every PostgreSQL process on the box (the system one and the embedded
    one); other databases' work shows up too, so run on a quiet machine."""
    total = 0.0
    for proc in psutil.process_iter(["name", "cmdline"]):
        try:
            name = proc.info["name"] or ""
            command = " ".join(proc.info["cmdline"] or [])[:40]
            if name.startswith("postgres") or "postgres" in command:
                t = proc.cpu_times()
                total += t.user + t.system
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total


def _embedded_pg_cpu_seconds() -> float | None:
    """CPU of the embedded PostgreSQL alone (its postmaster, live backends and exited ones):
    unlike _pg_cpu_seconds, other tenants' databases do not count."""
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if str(EMBEDDED_PGDATA) in " ".join(proc.info["cmdline"] or []):
                t = proc.cpu_times()
                total = t.user + t.system + t.children_user + t.children_system
                for child in proc.children():
                    with contextlib.suppress(psutil.NoSuchProcess):
                        c = child.cpu_times()
                        total += c.user + c.system
                return total
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return None


async def _scrape(session: aiohttp.ClientSession, url: str) -> dict[str, float]:
    """The server's /metrics as {series: value} (empty when it cannot be read)."""
    try:
        async with session.get(f"{url}/metrics") as resp:
            text = await resp.text()
    except aiohttp.ClientError:
        return {}
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            with contextlib.suppress(ValueError):
                values[name] = float(value)
    return values


def _histogram_summary(
    before: dict[str, float], after: dict[str, float], name: str, label: str = ""
) -> dict[str, float] | None:
    """count, max-bucket bound and p99 / p99.9 (as bucket upper bounds) of a Prometheus
    histogram's increase between two scrapes."""
    prefix = f"{name}_bucket{{" + (f"{label}," if label else "")
    buckets = []
    for series, value in after.items():
        if series.startswith(prefix):
            bound = series.rsplit('le="', 1)[1].rstrip('"}')
            buckets.append((float(bound), value - before.get(series, 0.0)))
    if not buckets:
        return None
    buckets.sort()
    total = buckets[-1][1]
    suffix = f"{{{label}}}" if label else ""

    def quantile(q: float) -> float:
        for bound, count in buckets:
            if count >= q * total:
                return 1000 * bound
        return float("inf")

    top = next((b for b, c in buckets if c >= total), float("inf")) if total else 0.0
    return {
        "count": total,
        "sum_ms": 1000
        * (after.get(f"{name}_sum{suffix}", 0) - before.get(f"{name}_sum{suffix}", 0)),
        "p99_le_ms": quantile(0.99) if total else 0.0,
        "p99.9_le_ms": quantile(0.999) if total else 0.0,
        "max_le_ms": 1000 * top if total else 0.0,
    }


async def dm(args) -> Report:
    fd_limit = raise_file_limit()
    clients_n = args.clients - args.clients % 2
    report = Report(
        "dm",
        {
            "clients": clients_n,
            "conversations": clients_n // 2,
            "rate_per_s": args.rate or 500,
            "duration_s": args.duration,
            "nodes": args.nodes,
            "database": "embedded" if args.embedded else args.database_url,
            "bus": "redis" if args.nodes > 1 else "memory",
            "drop_fraction_midway": args.drop_fraction,
            "delivery_acks": args.ack,
            "encoding": args.encoding,
            "fd_limit": fd_limit,
            "idle_clients": max(0, args.idle_clients),
            "server_root": args.server_root or str(ROOT),
        },
    )
    rate = args.rate or 500
    database_url = await _embedded_url() if args.embedded else args.database_url
    await asyncio.to_thread(ensure_database, database_url)
    secret = new_secret()
    started = time.perf_counter()
    idle_n = max(0, args.idle_clients)
    users = await bulk_users(database_url, clients_n + idle_n, secret)
    report.results["users_ready_s"] = time.perf_counter() - started

    servers: list[ServerProcess] = []
    prefix = f"dm-{run_id()}-"
    for node in range(args.nodes):
        env = server_env(database_url, secret, {"frame_budget": 100000})
        env.update(
            {
                "NEXGATE_RATE_LIMITS_MESSAGE": "1000000/3600",
                "NEXGATE_RATE_LIMITS_API": "100000000/3600",
                "NEXGATE_DATABASE_POOL_MAX": str(args.pool_max),
            }
        )
        if args.nodes > 1:
            env["REDIS_URL"] = args.redis_url
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        servers.append(
            ServerProcess(
                "server",
                free_port(),
                env,
                LOG_DIR / f"dm-server-{node}.log",
                root=args.server_root,
            )
        )
    tracker = Tracker()
    clients: list[GatewayClient | None] = [None] * len(users)
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    try:
        for server in servers:
            await server.wait_ready()
        t0 = time.perf_counter()
        pairs = await _open_conversations(servers[0].url, users[:clients_n], args.concurrency)
        report.results["conversations_ready_s"] = time.perf_counter() - t0
        _progress(f"{len(pairs)} conversations ready; connecting {len(users)} clients")

        def handler(index: int):
            me = users[index][0]

            def on_event(event: GatewayEvent) -> None:
                if event.type == "gateway.invalid_session":
                    tracker.invalid_sessions += 1  # a real client would refetch over HTTP
                    return
                if event.type != "message.created":
                    return
                key = tracker.on_created(me, event)
                if key is not None and args.ack:
                    asyncio.get_running_loop().create_task(ack(index, event))

            return on_event

        async def ack(index: int, event: GatewayEvent) -> None:
            client = clients[index]
            try:
                assert client is not None
                await client.call(
                    "messages.delivered",
                    conversation_id=event.data["conversation_id"],
                    seq=event.data["seq"],
                )
                tracker.acks += 1
            except Exception:
                tracker.ack_errors += 1

        sem = asyncio.Semaphore(args.concurrency)
        connect_errors: list[BaseException] = []

        async def connect(index: int) -> None:
            # Pair members on different nodes when there are two.
            node = servers[index % len(servers)]
            async with sem:
                client = GatewayClient(
                    f"{node.url}/api/gateway/ws",
                    users[index][1],
                    session=session,
                    encoding=args.encoding,
                    on_event=handler(index),
                    backoff_initial_s=0.2,
                    backoff_max_s=2.0,
                )
                try:
                    await client.connect()
                    clients[index] = client
                except Exception as exc:
                    connect_errors.append(exc)

        t0 = time.perf_counter()
        await asyncio.gather(*(connect(i) for i in range(len(users))))
        if connect_errors:
            raise RuntimeError(f"{len(connect_errors)} clients failed: {connect_errors[0]!r}")
        report.results["connect_s"] = time.perf_counter() - t0
        _progress(f"connected in {report.results['connect_s']:.1f}s; sending {rate}/s")

        async def send(k: int) -> None:
            a, b, conversation_id = random.choice(pairs)
            if random.random() < 0.5:
                a, b = b, a
            key = f"{prefix}{k}"
            sent = time.time()
            tracker.sent_at[key] = sent
            client = clients[a]
            assert client is not None
            for attempt in range(3):
                try:
                    await client.call(
                        "messages.send", conversation_id=conversation_id, content=key, nonce=key
                    )
                    tracker.persist_latency.append(time.time() - sent)
                    tracker.sent_ok += 1
                    tracker.acked.add(key)
                    return
                except Exception as exc:  # a dropped socket: resend with the same nonce
                    if attempt == 2:
                        tracker.send_errors += 1
                        tracker.first_error = tracker.first_error or repr(exc)[:200]
                    else:
                        await asyncio.sleep(0.5)

        # Everything built so far lives until the end: keep the cyclic GC from walking it
        # during the measurement (its pauses would show up as delivery latency).
        gc.collect()
        gc.freeze()
        lag: array = array("d")

        async def measure_lag() -> None:
            while True:
                t = time.perf_counter()
                await asyncio.sleep(0.01)
                lag.append(time.perf_counter() - t - 0.01)

        lag_task = asyncio.get_running_loop().create_task(measure_lag())
        metrics0 = [await _scrape(session, s.url) for s in servers]
        cpu0 = [s.cpu_seconds() for s in servers]
        pg0 = _pg_cpu_seconds()
        own0 = _embedded_pg_cpu_seconds() if args.embedded else None
        me = psutil.Process()
        me0 = sum(me.cpu_times()[:2])
        total = int(rate * args.duration)
        drop_at = total // 2 if args.drop_fraction > 0 else -1
        dropped: list[GatewayClient] = []
        tasks: list[asyncio.Task] = []
        start = time.perf_counter()
        for k in range(total):
            due = start + k / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if k == drop_at:
                live = [c for c in clients[:clients_n] if c is not None]
                dropped = random.sample(live, int(len(live) * args.drop_fraction))
                for client in dropped:
                    await client.drop()
                _progress(f"dropped {len(dropped)} sockets mid-run")
            tasks.append(asyncio.get_running_loop().create_task(send(k)))
        send_s = time.perf_counter() - start
        await asyncio.gather(*tasks)
        # Wait for stragglers: until everything confirmed has arrived, or nothing new has
        # arrived for 15 s (at most 3 minutes), so a slow run is not mistaken for a lossy one.
        elapsed = time.perf_counter() - start  # the send phase, for the CPU percentages
        cpu1 = [s.cpu_seconds() for s in servers]
        pg1 = _pg_cpu_seconds()
        own1 = _embedded_pg_cpu_seconds() if args.embedded else None
        me1 = sum(me.cpu_times()[:2])
        metrics1 = [await _scrape(session, s.url) for s in servers]
        hard_end = time.perf_counter() + 180
        last_progress, seen = time.perf_counter(), tracker.unique
        while time.perf_counter() < hard_end and tracker.unique < tracker.sent_ok:
            tracker.progress.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(tracker.progress.wait(), 0.5)
            if tracker.unique != seen:
                last_progress, seen = time.perf_counter(), tracker.unique
            elif time.perf_counter() - last_progress > 15:
                break
        report.results["drain_s"] = time.perf_counter() - start - elapsed
        lag_task.cancel()
        lags = sorted(lag)
        server_cpu = [100 * (c1 - c0) / elapsed for c1, c0 in zip(cpu1, cpu0, strict=True)]
        delivered_once = sum(1 for v in tracker.delivered.values() if v == 1)
        duplicates = sum(v - 1 for v in tracker.delivered.values() if v > 1)
        # Lost: the server confirmed it (the sender got its reply) and the recipient never got
        # it. A send that failed (timeout, dropped socket) may or may not have been persisted.
        lost = sum(1 for k in tracker.acked if k not in tracker.delivered)
        unconfirmed = [k for k in tracker.sent_at if k not in tracker.acked]
        unconfirmed_delivered = sum(1 for k in unconfirmed if k in tracker.delivered)
        lat = sorted(tracker.deliver_latency)
        plat = sorted(tracker.persist_latency)
        report.results.update(
            {
                "sent": total,
                "send_rate_per_s": total / send_s,
                "persisted": tracker.sent_ok,
                "send_errors": tracker.send_errors,
                "first_send_error": tracker.first_error,
                "delivered": len(tracker.delivered),
                "delivered_exactly_once": delivered_once,
                "lost": lost,
                "failed_sends_delivered_anyway": unconfirmed_delivered,
                "duplicated": duplicates,
                "out_of_order": tracker.out_of_order,
                "dropped_sockets_midway": len(dropped),
                "resumes": sum(c.resumes for c in clients if c is not None),
                "invalid_sessions": tracker.invalid_sessions,
                "delivered_ms": {
                    "p50": 1000 * percentile(lat, 50),
                    "p95": 1000 * percentile(lat, 95),
                    "p99": 1000 * percentile(lat, 99),
                    "p99.9": 1000 * percentile(lat, 99.9),
                    "max": 1000 * (lat[-1] if lat else float("nan")),
                },
                "persisted_ms": {
                    "p50": 1000 * percentile(plat, 50),
                    "p95": 1000 * percentile(plat, 95),
                    "p99": 1000 * percentile(plat, 99),
                    "max": 1000 * (plat[-1] if plat else float("nan")),
                },
                "delivery_acks": tracker.acks,
                "delivery_ack_errors": tracker.ack_errors,
                "server_cpu_pct": [round(c, 1) for c in server_cpu],
                "postgres_cpu_pct": 100 * (pg1 - pg0) / elapsed,
                "client_cpu_pct": 100 * (me1 - me0) / elapsed,
                # CPU per persisted message over the send phase (PostgreSQL: every postgres
                # process on the box, so an upper bound on a shared machine).
                "cpu_ms_per_message": {
                    "server": 1000
                    * sum(c1 - c0 for c1, c0 in zip(cpu1, cpu0, strict=True))
                    / max(1, tracker.sent_ok),
                    "postgres": 1000 * (pg1 - pg0) / max(1, tracker.sent_ok),
                    # The embedded PostgreSQL of this run alone (None on a shared server).
                    "postgres_own": 1000 * (own1 - own0) / max(1, tracker.sent_ok)
                    if own0 is not None and own1 is not None
                    else None,
                    "clients": 1000 * (me1 - me0) / max(1, tracker.sent_ok),
                },
                # The server's own view over the send phase, from its /metrics (a server
                # without these metrics, e.g. an older checkout, reports nothing here).
                "server_loop_delay_ms": [
                    _histogram_summary(m0, m1, "nexgate_event_loop_delay_seconds")
                    for m0, m1 in zip(metrics0, metrics1, strict=True)
                ],
                "server_gc_pauses_ms": [
                    {
                        gen: _histogram_summary(
                            m0, m1, "nexgate_gc_pause_seconds", f'generation="{gen}"'
                        )
                        for gen in ("0", "1", "2")
                    }
                    for m0, m1 in zip(metrics0, metrics1, strict=True)
                ],
                "client_loop_lag_ms": {
                    "p99": 1000 * percentile(lags, 99),
                    "max": 1000 * (lags[-1] if lags else float("nan")),
                },
                "server_rss_mib": [round(s.rss() / 2**20, 1) for s in servers],
            }
        )
        report.notes.append(
            "latencies include the client process's own scheduling: clients and servers "
            "share the machine's cores"
        )
    finally:
        sem = asyncio.Semaphore(500)

        async def close(client: GatewayClient) -> None:
            async with sem:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(client.close(), 10)

        await asyncio.gather(*(close(c) for c in clients if c is not None))
        await session.close()
        for server in servers:
            server.stop()
    return report
