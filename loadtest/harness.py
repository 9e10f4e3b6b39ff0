"""Harness plumbing: file limits, a throw-away database of bulk-created users with tokens, server
processes on 127.0.0.1, memory/CPU sampling, percentiles and the report."""

from __future__ import annotations

import asyncio
import os
import resource
import secrets
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import psutil

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/nexgate_loadtest"


def raise_file_limit() -> int:
    """Raise RLIMIT_NOFILE to the hard limit (children inherit it); returns the new soft one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_database(url: str) -> None:
    """Create the load-test database if missing and apply migrations."""
    import psycopg2

    from server.store.migrate import apply_migrations

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = psycopg2.connect(urlunsplit(parts._replace(path="/postgres")))
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        if cur.fetchone() is None:
            cur.execute(f'CREATE DATABASE "{name}"')
    admin.close()
    apply_migrations(url)


async def bulk_users(database_url: str, count: int, secret: str) -> list[tuple[str, str]]:
    """`count` users lt_000000… (created in one statement when missing) and a fresh access
    token for each, minted with the server's signer: [(user_id, token)]."""
    from argon2 import PasswordHasher

    from server.domain.auth_tokens import TokenSigner
    from server.ids import new_id
    from server.store import users as users_store
    from server.store.db import Database

    names = [f"lt_{i:06d}" for i in range(count)]
    password_hash = PasswordHasher(time_cost=1, memory_cost=1024).hash(secrets.token_hex(8))
    db = await Database.connect(database_url, maxsize=2)
    try:
        for start in range(0, count, 5000):
            chunk = names[start : start + 5000]
            rows = [(new_id(), n, f"{n}@loadtest.invalid", password_hash, n) for n in chunk]
            await users_store.bulk_insert_users(db, rows)
        found = await db.fetch("SELECT id, username FROM users WHERE username = ANY(%s)", (names,))
    finally:
        await db.close()
    ids = {row["username"]: row["id"] for row in found}
    signer = TokenSigner(secret, 6 * 3600)
    # Each load-test user gets a sign-in session id of its own (never revoked).
    return [(str(ids[n]), signer.issue(ids[n], n, ["user"], new_id())) for n in names]


class ServerProcess:
    """A server started by the harness in its own process (only ever on 127.0.0.1)."""

    def __init__(
        self,
        module: str,
        port: int,
        env: dict[str, str],
        log_path: Path,
        *,
        root: str | None = None,
    ) -> None:
        # `root`: run the server of another checkout (before/after comparisons, same harness).
        root_path = Path(root).resolve() if root else ROOT
        if root_path != ROOT:
            env = {**env, "PYTHONPATH": str(root_path)}
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self._log = open(log_path, "wb")
        args = [sys.executable, "-m", module]
        args += ["serve", "--port", str(port)] if module == "server" else ["--port", str(port)]
        self.proc = subprocess.Popen(
            args, env=env, cwd=root_path, stdout=self._log, stderr=subprocess.STDOUT
        )
        self.ps = psutil.Process(self.proc.pid)

    async def wait_ready(self, wait_s: float = 60) -> None:
        deadline = time.monotonic() + wait_s
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    async with session.get(f"{self.url}/readyz") as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError(f"server did not start; see {self.log_path}")

    def rss(self) -> int:
        return self.ps.memory_info().rss

    def cpu_seconds(self) -> float:
        times = self.ps.cpu_times()
        return times.user + times.system

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


def server_env(database_url: str, secret: str, gateway: dict[str, Any]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEXGATE_")}
    env.pop("REDIS_URL", None)
    env.update(
        {
            "DATABASE_URL": database_url,
            "NEXGATE_AUTH_JWT_SECRET": secret,
            "NEXGATE_DATABASE_MIGRATE_ON_START": "false",
            "NEXGATE_SERVER_LOG_LEVEL": "WARNING",
            "NEXGATE_SERVER_DATA_DIR": str(ROOT / "var" / "loadtest"),
            "NEXGATE_JOBS_IN_PROCESS_WORKER": "false",
            "PYTHONPATH": str(ROOT),
        }
    )
    for key, value in gateway.items():
        env[f"NEXGATE_GATEWAY_{key.upper()}"] = str(value)
    return env


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


@dataclass
class Report:
    scenario: str
    params: dict[str, Any]
    results: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        # The box may be shared (other test suites): say how loaded it was.
        self.params["load_average_at_start"] = "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
        self.params["cpus"] = os.cpu_count()

    def finish(self) -> None:
        self.results["load_average_at_end"] = "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())

    def table(self) -> str:
        lines = [f"== {self.scenario} ==", "parameters:"]
        lines += [f"  {k:<28} {v}" for k, v in self.params.items()]
        lines.append("results:")
        for key, value in self.results.items():
            if isinstance(value, dict):
                lines.append(f"  {key}:")
                lines += [f"    {k:<26} {_fmt(v)}" for k, v in value.items()]
            else:
                lines.append(f"  {key:<28} {_fmt(value)}")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "params": self.params,
            "results": self.results,
            "notes": self.notes,
        }


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def new_secret() -> str:
    return "loadtest-" + secrets.token_urlsafe(32)


def run_id() -> str:
    return uuid.uuid4().hex[:8]
