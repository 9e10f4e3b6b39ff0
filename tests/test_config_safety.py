"""Configuration that refuses to be unsafe, seen as an operator sees it: `nexgate serve` exits
at once with one line naming the setting, before touching the database or Redis; secrets can
come from files (Kubernetes / Docker secrets)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from server.config import ConfigError, load_settings

ROOT = Path(__file__).resolve().parent.parent


def _serve(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("NEXGATE_") and k not in ("DATABASE_URL", "REDIS_URL")
    }
    base.update(NEXGATE_SERVER_DATA_DIR=str(tmp_path / "var"), **env)
    return subprocess.run(
        [sys.executable, "-m", "server", "serve", "--port", "0"],
        env=base,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def test_redis_without_a_shared_jwt_secret_is_a_startup_error(tmp_path):
    # Each node would sign with its own generated secret: tokens failing across nodes.
    done = _serve(tmp_path, REDIS_URL="redis://127.0.0.1:1/0")
    assert done.returncode == 2
    assert "auth.jwt_secret" in done.stderr and "NEXGATE_AUTH_JWT_SECRET_FILE" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_example_placeholders_are_refused(tmp_path):
    done = _serve(tmp_path, NEXGATE_CONFIG=str(ROOT / "config" / "production.example.toml"))
    assert done.returncode == 2
    # Every placeholder is named, the secret among them.
    for setting in ("auth.jwt_secret", "database.url", "commerce.service_token"):
        assert setting in done.stderr
    assert "Traceback" not in done.stderr


def test_a_placeholder_set_through_the_environment_is_refused(tmp_path):
    done = _serve(tmp_path, NEXGATE_AUTH_JWT_SECRET="change_me_please")
    assert done.returncode == 2 and "auth.jwt_secret" in done.stderr


def test_secrets_are_read_from_files(tmp_path):
    secret = tmp_path / "jwt"
    secret.write_text("from-a-mounted-secret-" + "z" * 40 + "\n")
    url = tmp_path / "redis-url"
    url.write_text("redis://redis.internal:6379/0\n")
    env = {"NEXGATE_AUTH_JWT_SECRET_FILE": str(secret), "REDIS_URL_FILE": str(url)}
    settings = load_settings(env=env)
    assert settings.auth.jwt_secret == "from-a-mounted-secret-" + "z" * 40
    assert settings.redis.url == "redis://redis.internal:6379/0"


def test_an_unreadable_secret_file_names_the_variable(tmp_path):
    with pytest.raises(ConfigError, match="NEXGATE_AUTH_JWT_SECRET_FILE"):
        load_settings(env={"NEXGATE_AUTH_JWT_SECRET_FILE": str(tmp_path / "missing")})
    done = _serve(tmp_path, NEXGATE_AUTH_JWT_SECRET_FILE=str(tmp_path / "missing"))
    assert done.returncode == 2 and "NEXGATE_AUTH_JWT_SECRET_FILE" in done.stderr


def test_a_value_and_its_file_together_are_ambiguous():
    env = {"NEXGATE_AUTH_JWT_SECRET": "a" * 40, "NEXGATE_AUTH_JWT_SECRET_FILE": "/dev/null"}
    with pytest.raises(ConfigError, match="not both"):
        load_settings(env=env)
