"""The load-test harness itself runs end to end (tiny sizes): it creates its users in bulk,
starts real servers in other processes, drives real clients and reports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "loadtest", *args, "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(proc.stdout[proc.stdout.index("{\n") :])


def test_connect_scenario_holds_authenticated_sockets(clean_db):
    report = _run(
        "connect",
        "--clients",
        "30",
        "--hold",
        "1.5",
        "--heartbeat-ms",
        "500",
        "--database-url",
        clean_db,
    )
    results = report["results"]
    assert results["connected"] == 30 and results["failed"] == 0
    assert results["alive_after_hold"] == 30 and results["server_sockets_reported"] == 30
    assert results["heartbeat_acks"] > 0
    assert results["heartbeat_acks"] >= results["heartbeats_sent"] - 30
    assert results["server_kib_per_socket"] > 0


def test_fanout_and_ceiling_scenarios_deliver_everything(clean_db):
    common = ["--clients", "10", "--duration", "1", "--database-url", clean_db]
    product = _run("fanout", "--no-ceiling", *common)["results"]["product"]
    assert product["max.published"] > 0 and product["max.dropped"] == 0
    assert product["at_rate.deliveries"] == 10 * product["at_rate.published"]
    ceiling = _run("ceiling", *common)["results"]["ceiling"]
    assert ceiling["max.dropped"] == 0 and ceiling["max.deliveries_per_s"] > 0
