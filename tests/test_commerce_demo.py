"""`nexgate seed-demo`: a coherent demo world with real cards, safe to run twice."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from server.app_keys import CONTEXT
from server.demo import DEMO_PASSWORD, seed_demo
from tests.commerce_support import COMMERCE_SETTINGS

pytestmark = pytest.mark.app_settings(**COMMERCE_SETTINGS)

ROOT = Path(__file__).resolve().parent.parent


async def login(client, username: str) -> dict[str, str]:
    resp = await client.post("/api/auth/login", json={"login": username, "password": DEMO_PASSWORD})
    assert resp.status == 200, await resp.text()
    client.session.cookie_jar.clear()
    return {"Authorization": f"Bearer {(await resp.json())['access_token']}"}


async def test_seed_demo_builds_a_world_and_is_safe_to_rerun(client):
    ctx = client.server.app[CONTEXT]
    first = await seed_demo(ctx)
    second = await seed_demo(ctx)
    assert first["follows_created"] > 0 and second["follows_created"] == 0
    assert first["posts_created"] == 5 and second["posts_created"] == 0
    for key in ("shops", "products", "events", "groups", "installment_plans"):
        assert first[key] == second[key] > 0, key

    ava = await login(client, "ava")
    profile = await (await client.get("/api/users/maya", headers=ava)).json()
    assert profile["followers_count"] >= 3 and profile["relationship"]["following"] == "accepted"

    groups = await (
        await client.get("/api/buy-together/groups", params={"status": "any"}, headers=ava)
    ).json()
    statuses = {g["status"] for g in groups["items"]}
    assert {"open", "almost_full", "full", "expired"} <= statuses
    leo = await login(client, "leo")
    leos = await (
        await client.get("/api/buy-together/groups", params={"status": "cancelled"}, headers=leo)
    ).json()
    assert len(leos["items"]) == 1

    laptops = await (
        await client.get("/api/products/search", params={"q": "laptop"}, headers=ava)
    ).json()
    laptop = laptops["items"][0]
    assert laptop["shop"]["name"] == "Maya's Tech" and laptop["price"]["formatted"] == "$1,200"
    plans = await (
        await client.get(f"/api/products/{laptop['id']}/installment-plans", headers=ava)
    ).json()
    assert [p["duration_label"] for p in plans["items"]] == ["3 months", "6 months", "12 months"]
    events = await (await client.get("/api/events/search", headers=ava)).json()
    assert len(events["items"]) == 4  # the past one is not upcoming
    shop = await (await client.get("/api/shops/$leos_kicks", headers=ava)).json()
    assert shop["products_count"] == 2

    # Posts that use every feature: cards, plans, a live group, a collaboration, an event.
    mayas = await (await client.get("/api/users/maya/posts", headers=ava)).json()
    post = mayas["items"][0]
    assert post["products"][0]["name"].startswith("Gaming Laptop")
    assert [p["is_featured"] for p in post["installment_plans"]] == [False, True]
    assert post["groups"][0]["status"] == "almost_full"
    assert {e["type"] for e in post["entities"]} == {"shop", "hashtag", "url"}
    zoes = await (await client.get("/api/users/zoe/posts", headers=ava)).json()
    assert zoes["items"][0]["byline"] == "By @leo and @zoe"
    assert zoes["items"][0]["events"][0]["title"] == "Retro Runner Release Party"


def test_seed_demo_command(settings, tmp_path):
    config = tmp_path / "demo.toml"
    config.write_text(
        f"""[server]
data_dir = "{tmp_path / "var"}"
[database]
url = "{settings.database.url}"
[auth]
jwt_secret = "{"d" * 40}"
argon2_time_cost = 1
argon2_memory_kib = 1024
"""
    )
    command = [sys.executable, "-m", "server", "--config", str(config), "seed-demo"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEXGATE_")}
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    for _ in range(2):  # twice: re-running is safe
        done = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        assert "demo world ready: 6 users" in done.stdout and DEMO_PASSWORD in done.stdout
