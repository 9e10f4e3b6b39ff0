"""The multi-node layout of deploy/, as processes (no container runtime here): HAProxy (Debian's
package, with deploy/haproxy/haproxy.cfg) in front of two `nexgate serve` nodes and a
`nexgate worker`, on a real PostgreSQL and a redis-server of the test's own.

Every client connects through HAProxy with the reference client (reconnect + resume, and the
documented resync over HTTP on invalid_session). Through a node killed with -9, a drained node
and a Redis restart, every DM the server confirmed (201) reaches its recipient: live, replayed
on resume, or in the resync. Run with `make cluster-test` (.ci/run calls it)."""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import aiohttp
import pytest

from protocol.client import INVALID_SESSION_EVENT, GatewayClient
from tests.fixtures.own_redis import OwnRedis
from tests.gateway_support import Node, node_env
from tests.helpers import free_port

ROOT = Path(__file__).resolve().parents[2]
HAPROXY_CFG = ROOT / "deploy" / "haproxy" / "haproxy.cfg"
RECIPIENTS = 4


class HAProxy:
    """deploy/haproxy/haproxy.cfg, with the bind address and node addresses made local."""

    def __init__(self, workdir: Path, node_ports: list[int]) -> None:
        binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
        if not Path(binary).exists():
            pytest.skip("haproxy is not installed (apt-get install -y haproxy; .ci/run does)")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        text = HAPROXY_CFG.read_text()
        text = re.sub(r"(?m)^(\s*)bind :8080$", rf"\1bind 127.0.0.1:{self.port}", text)
        # Every backend's `server nodeN <host>:8080` points at the local node N.
        text, count = re.subn(
            r"(?m)^(\s*server node(\d+) )\S+:8080",
            lambda m: f"{m.group(1)}127.0.0.1:{node_ports[int(m.group(2)) - 1]}",
            text,
        )
        assert count >= 2, "deploy/haproxy/haproxy.cfg should list node1 and node2"
        text = text.replace("log stdout format raw local0 warning", "")
        # The production maxconn needs a file-descriptor limit a test process may not have.
        text = re.sub(r"(?m)^(\s*)maxconn \d+$", r"\1maxconn 4000", text)
        self.cfg = workdir / "haproxy.cfg"
        self.cfg.write_text(text)
        check = subprocess.run([binary, "-c", "-f", str(self.cfg)], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        self.log = workdir / "haproxy.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [binary, "-db", "-f", str(self.cfg)], stdout=log, stderr=subprocess.STDOUT
            )

    def check_running(self) -> None:
        if self.proc.poll() is not None:
            raise AssertionError(f"haproxy exited: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


class Worker:
    def __init__(self, env: dict[str, str], log_path: Path, metrics_port: int) -> None:
        self.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "server", "worker"],
            env={**env, "NEXGATE_JOBS_METRICS_PORT": str(metrics_port)},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._log.close()


class Phone:
    """A recipient's app on the reference client, through the load balancer: shows live DMs and
    refetches the conversation over HTTP on invalid_session (the documented resync)."""

    def __init__(self, lb: str, token: str, conversation_id: str) -> None:
        self.lb = lb
        self.auth = {"Authorization": f"Bearer {token}"}
        self.conversation_id = conversation_id
        self.seen: set[str] = set()
        self.resyncs = 0
        self.gw = GatewayClient(
            f"{lb}/api/gateway/ws", token, backoff_initial_s=0.1, backoff_max_s=1.0
        )
        self.task: asyncio.Task[None] | None = None

    async def start(self, http: aiohttp.ClientSession) -> None:
        await self.gw.connect()
        self.task = asyncio.create_task(self._run(http))

    async def _run(self, http: aiohttp.ClientSession) -> None:
        while True:
            event = await self.gw.next_event(3600)
            if event.type == "message.created":
                self.seen.add(event.data["message"]["id"])
            elif event.type == INVALID_SESSION_EVENT:
                self.resyncs += 1
                await self._refetch(http)

    async def _refetch(self, http: aiohttp.ClientSession) -> None:
        cursor = None
        for _attempt in range(50):
            params = {"limit": "100", **({"cursor": cursor} if cursor else {})}
            url = f"{self.lb}/api/conversations/{self.conversation_id}/messages"
            try:
                async with http.get(url, params=params, headers=self.auth) as resp:
                    if resp.status != 200:
                        await asyncio.sleep(0.2)
                        continue
                    page = await resp.json()
            except aiohttp.ClientError:
                await asyncio.sleep(0.2)
                continue
            self.seen.update(m["id"] for m in page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                return

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        await self.gw.close()


async def _register(http: aiohttp.ClientSession, lb: str, name: str) -> tuple[str, str]:
    body = {"username": name, "email": f"{name}@example.com", "password": "s3cret-pass"}
    async with http.post(f"{lb}/api/auth/register", json=body) as resp:
        assert resp.status == 201, await resp.text()
        data = await resp.json()
    http.cookie_jar.clear()
    return data["user"]["id"], data["access_token"]


class Sender:
    """Sends DMs through the load balancer; a DM counts as committed only when answered 201."""

    def __init__(self, http: aiohttp.ClientSession, lb: str, token: str) -> None:
        self.http = http
        self.lb = lb
        self.auth = {"Authorization": f"Bearer {token}"}
        self.confirmed: dict[str, set[str]] = {}
        self.failures: dict[int | str, int] = {}

    async def send(self, conversation_id: str, content: str) -> None:
        url = f"{self.lb}/api/conversations/{conversation_id}/messages"
        try:
            async with self.http.post(url, json={"content": content}, headers=self.auth) as resp:
                if resp.status == 201:
                    self.confirmed.setdefault(conversation_id, set()).add((await resp.json())["id"])
                    return
                key: int | str = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            key = type(exc).__name__
        self.failures[key] = self.failures.get(key, 0) + 1

    async def burst(self, conversations: list[str], rounds: int, pause_s: float = 0.05) -> None:
        for n in range(rounds):
            await asyncio.gather(
                *(self.send(c, f"{n}-{uuid.uuid4().hex[:6]}") for c in conversations)
            )
            await asyncio.sleep(pause_s)


async def _all_delivered(sender: Sender, phones: list[Phone], wait_s: float = 40) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while loop.time() < deadline:
        if all(sender.confirmed.get(p.conversation_id, set()) <= p.seen for p in phones):
            return
        await asyncio.sleep(0.2)
    lost = {
        p.conversation_id: len(sender.confirmed.get(p.conversation_id, set()) - p.seen)
        for p in phones
    }
    raise AssertionError(f"confirmed DMs never delivered, per conversation: {lost}")


async def _sockets_on(http: aiohttp.ClientSession, node: Node) -> int:
    """The WebSockets a node holds, from its own /metrics (not through the balancer)."""
    async with http.get(f"{node.url}/metrics") as resp:
        text = await resp.text()
    return sum(
        int(float(line.rsplit(" ", 1)[1]))
        for line in text.splitlines()
        if line.startswith("nexgate_gateway_connections{") and 'transport="websocket"' in line
    )


async def _wait_http(http: aiohttp.ClientSession, url: str, status: int = 200, wait_s: float = 30):
    async with asyncio.timeout(wait_s):
        while True:
            try:
                async with http.get(url) as resp:
                    if resp.status == status:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)


async def test_the_cluster_survives_kill_drain_and_a_redis_restart(clean_db, tmp_path):
    redis = OwnRedis(tmp_path)
    redis.start()
    await redis.wait_up()
    env = node_env(clean_db, redis.url, "cl:", str(tmp_path / "var"))
    env.update(
        NEXGATE_EVENTS_REPUBLISH_AFTER_S="2",
        NEXGATE_EVENTS_SWEEP_INTERVAL_S="0.5",
        NEXGATE_SERVER_DRAIN_GRACE_S="2.5",
        NEXGATE_SERVER_DRAIN_SPREAD_S="2",
        NEXGATE_RATE_LIMITS_MESSAGE="100000/3600",
        NEXGATE_RATE_LIMITS_API="1000000/3600",
        NEXGATE_GATEWAY_FRAME_BUDGET="100000",
    )
    ports = [free_port(), free_port()]
    nodes = [Node(port, env, str(tmp_path / f"node{i}.log")) for i, port in enumerate(ports)]
    worker = Worker(env, tmp_path / "worker.log", free_port())
    lb: HAProxy | None = None
    phones: list[Phone] = []
    http = aiohttp.ClientSession()
    try:
        for node in nodes:
            await node.wait_ready(http)
        lb = HAProxy(tmp_path, ports)
        await asyncio.sleep(0.3)
        lb.check_running()
        await _wait_http(http, f"{lb.url}/readyz")
        # The worker serves its own /metrics (jobs run there, not on the nodes).
        await _wait_http(http, worker.metrics_url)

        _, sender_token = await _register(http, lb.url, "sender")
        sender = Sender(http, lb.url, sender_token)
        conversations = []
        for i in range(RECIPIENTS):
            user_id, token = await _register(http, lb.url, f"phone{i}")
            async with http.post(
                f"{lb.url}/api/conversations", json={"user_id": user_id}, headers=sender.auth
            ) as resp:
                assert resp.status == 200, await resp.text()
                cid = (await resp.json())["id"]
            conversations.append(cid)
            phone = Phone(lb.url, token, cid)
            await phone.start(http)
            phones.append(phone)

        # 1. Steady state through the load balancer.
        await sender.burst(conversations, 10)
        await _all_delivered(sender, phones)

        # 2. A node dies with -9 mid-stream: its clients resume on the other node. The victim
        # is the node holding more of the phones' sockets (so some must move).
        held = [await _sockets_on(http, node) for node in nodes]
        assert sum(held) >= RECIPIENTS
        if held[1] > held[0]:
            nodes.reverse()
            ports.reverse()
        victim = nodes[0]
        sending = asyncio.create_task(sender.burst(conversations, 40))
        await asyncio.sleep(0.5)
        victim.proc.send_signal(signal.SIGKILL)
        await sending
        await _all_delivered(sender, phones)
        assert sum(p.gw.reconnects for p in phones) >= 1  # someone was on the dead node

        # It comes back (a new process on the same port) and takes traffic again.
        nodes[0] = Node(ports[0], env, str(tmp_path / "node0-again.log"))
        await nodes[0].wait_ready(http)

        # 3. A rolling deploy drains the other node: it hands its clients over.
        drained = nodes[1]
        reconnects = sum(p.gw.reconnects for p in phones)
        sending = asyncio.create_task(sender.burst(conversations, 60))
        await asyncio.sleep(0.3)
        drained.proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(drained.proc.wait, 40) == 0
        await sending
        await _all_delivered(sender, phones)
        assert sum(p.gw.reconnects for p in phones) > reconnects
        nodes[1] = Node(ports[1], env, str(tmp_path / "node1-again.log"))
        await nodes[1].wait_ready(http)

        # 4. Redis restarts empty under the stream: nothing is lost silently; the clients are
        # told their logs were reset and resync over HTTP.
        resyncs = sum(p.resyncs for p in phones)
        sending = asyncio.create_task(sender.burst(conversations, 60))
        await asyncio.sleep(0.5)
        await redis.restart(1.0)
        await sending
        await sender.burst(conversations, 5)  # after the restart: new epochs, live again
        await _all_delivered(sender, phones, wait_s=60)
        assert sum(p.resyncs for p in phones) > resyncs
        # Most sends were confirmed (the 201s are what the assertions above hold to).
        total = sum(len(v) for v in sender.confirmed.values())
        assert total >= RECIPIENTS * 150, (total, sender.failures)
    finally:
        for phone in phones:
            await phone.stop()
        await http.close()
        if lb is not None:
            lb.stop()
        worker.stop()
        for node in nodes:
            node.stop()
        redis.kill()
