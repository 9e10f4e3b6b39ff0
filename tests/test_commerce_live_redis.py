"""The live buy-together tests again, on the Redis engine (skipped without
NEXGATE_TEST_REDIS_URL): topic events cross the Redis bus to the gateway's sockets."""

from __future__ import annotations

import pytest

from tests.commerce_support import SERVICE_TOKEN, commerce_fixture  # noqa: F401  (fixture)
from tests.conftest import make_settings
from tests.test_commerce_live import (  # noqa: F401  (collected here, on this module's app)
    test_group_expires_on_time_with_no_traffic,
    test_service_changes_and_deletes_reach_subscribers,
    test_spots_left_becomes_group_full_live,
)


@pytest.fixture
def prefix(redis_prefix):
    return redis_prefix


@pytest.fixture(name="settings")
def settings_fixture(clean_db, tmp_path, redis_url, prefix):
    return make_settings(
        clean_db,
        tmp_path,
        commerce={"service_token": SERVICE_TOKEN},
        redis={"url": redis_url, "prefix": prefix},
    )


async def test_the_app_runs_on_the_redis_engine(client):
    from server.app_keys import CONTEXT
    from server.bus.redis import RedisBus

    assert isinstance(client.server.app[CONTEXT].bus, RedisBus)
