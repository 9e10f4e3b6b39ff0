"""A bounded schemathesis run against /api/openapi.json on a real server process: no 5xx and no
response that breaks its documented schema."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import orjson
import pytest

from tests.helpers import free_port

ROOT = Path(__file__).resolve().parent.parent


def wait_ready(base: str, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError("server did not become ready")


def post_json(url: str, body: dict) -> dict:
    req = urllib.request.Request(
        url, data=orjson.dumps(body), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return orjson.loads(resp.read())


@pytest.mark.skipif(
    shutil.which("schemathesis", path=str(Path(sys.executable).parent)) is None,
    reason="schemathesis is not installed in this environment",
)
def test_schemathesis_finds_no_server_errors(clean_db, tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "NEXGATE_DATABASE_URL": clean_db,
        "NEXGATE_DATABASE_MIGRATE_ON_START": "false",
        "NEXGATE_SERVER_DATA_DIR": str(tmp_path / "var"),
        "NEXGATE_AUTH_JWT_SECRET": "fuzz-secret-" + "y" * 32,
        "NEXGATE_AUTH_ARGON2_TIME_COST": "1",
        "NEXGATE_AUTH_ARGON2_MEMORY_KIB": "1024",
        "NEXGATE_AUTH_REGISTRATION": "open",
        "NEXGATE_RATE_LIMITS_API": "100000/3600",
        "NEXGATE_RATE_LIMITS_LOGIN_PER_IP": "100000/900",
        "NEXGATE_RATE_LIMITS_FORGOT_PASSWORD_PER_IP": "100000/3600",
        "NEXGATE_SERVER_LOG_LEVEL": "WARNING",
        "NEXGATE_REDIS_URL": "",
    }
    env.pop("REDIS_URL", None)
    env.pop("DATABASE_URL", None)
    server_log = (tmp_path / "server.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "server", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=server_log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_ready(base, proc)
        token = post_json(
            base + "/api/auth/register",
            {"username": "fuzzer", "email": "fuzzer@example.com", "password": "fuzz-pass-1"},
        )["access_token"]
        result = subprocess.run(
            [
                str(Path(sys.executable).parent / "schemathesis"),
                "run",
                base + "/api/openapi.json",
                "--checks",
                "not_a_server_error,response_schema_conformance",
                "--max-examples",
                os.environ.get("NEXGATE_FUZZ_EXAMPLES", "10"),
                "--seed",
                "20261127",
                "--phases",
                "examples,fuzzing",
                "--exclude-path-regex",
                "^/api/gateway/",
                "--request-timeout",
                "10",
                "-H",
                f"Authorization: Bearer {token}",
                "--warnings",
                "off",
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=400,
        )
        errors = [
            line
            for line in (tmp_path / "server.log").read_text().splitlines()
            if '"level":"ERROR"' in line
        ]
        assert result.returncode == 0, result.stdout[-6000:] + "\n".join(errors[-5:])
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
