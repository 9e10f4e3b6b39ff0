"""What an operator reads: /metrics of a node and of the standalone worker (build info,
event-loop lag, PostgreSQL / Redis latency and errors, rate-limit rejections, readiness), and
alert rules Prometheus accepts."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.gateway_support import node_env
from tests.helpers import free_port

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.app_settings(rate_limits={"api": "5/3600"})


def _sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample of the Prometheus text format, or None."""
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        metric, _, rest = head.partition("{")
        if metric == name and all(f'{k}="{v}"' in rest for k, v in labels.items()):
            return float(value)
        if metric == name and not want and not rest:
            return float(value)
    return None


async def test_node_metrics_show_build_loop_lag_dependencies_and_rejections(client, alice):
    before = (
        _sample(await (await client.get("/metrics")).text(), "nexgate_rate_limit_rejections_total")
        or 0
    )
    statuses = [
        (await client.get("/api/conversations", headers=alice.auth)).status for _ in range(8)
    ]
    assert 429 in statuses
    assert (await client.get("/readyz")).status == 200
    await asyncio.sleep(0.6)  # a few loop-lag samples
    text = await (await client.get("/metrics")).text()
    assert _sample(text, "nexgate_build_info", version="0.1.0") == 1.0
    assert _sample(text, "nexgate_event_loop_lag_seconds") is not None
    assert (_sample(text, "nexgate_rate_limit_rejections_total") or 0) > before
    assert (
        _sample(
            text,
            "nexgate_dependency_duration_seconds_count",
            dependency="postgresql",
            op="transaction",
        )
        or 0
    ) > 0
    assert _sample(text, "nexgate_ready") == 1.0
    assert _sample(text, "nexgate_db_pool_max") == 10.0  # tests' database.pool_max


def _start_worker(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "server", "worker"], env=env, stdout=log, stderr=log
        )


async def test_the_standalone_worker_serves_its_own_metrics(clean_db, tmp_path):
    env = node_env(clean_db, "", "", str(tmp_path / "var"))
    env.pop("REDIS_URL")
    env.pop("NEXGATE_REDIS_PREFIX")
    port = free_port()
    env["NEXGATE_JOBS_METRICS_PORT"] = str(port)
    proc = _start_worker(env, tmp_path / "worker.log")
    try:
        async with aiohttp.ClientSession() as http:
            text = ""
            async with asyncio.timeout(30):
                while "nexgate_jobs_ready" not in text:
                    try:
                        async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
                            text = await resp.text()
                    except aiohttp.ClientError:
                        await asyncio.sleep(0.2)
            assert _sample(text, "nexgate_build_info", version="0.1.0") == 1.0
            assert _sample(text, "nexgate_jobs_dead") is not None
            async with http.get(f"http://127.0.0.1:{port}/readyz") as resp:
                assert resp.status == 200
                assert (await resp.json())["database"] == "ok"
    finally:
        proc.terminate()
        assert await asyncio.to_thread(proc.wait, 30) == 0


def test_the_alert_rules_pass_promtool():
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian package prometheus; .ci/run installs it)")
    rules = ROOT / "config" / "monitoring" / "alerts.yml"
    done = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    runbook = (ROOT / "config" / "monitoring" / "RUNBOOK.md").read_text().lower()
    for line in rules.read_text().splitlines():
        if "runbook:" in line:
            anchor = line.split("#", 1)[1].strip().strip('"')
            assert f"## {anchor}" in runbook, f"no runbook entry for {anchor}"
