"""Test setup: the fixtures live in the plugins below (tests/fixtures/), plain helpers in
tests/helpers.py and the *_support.py modules. A test module names the fixtures it uses as
arguments and never imports one."""

import pytest

# The helpers used to live here: keep pytest's assertion introspection in them.
pytest.register_assert_rewrite("tests.helpers")

pytest_plugins = [
    "tests.fixtures.database",  # database_url, clean_db: a real PostgreSQL, emptied per test
    "tests.fixtures.redis",  # redis_url, redis_prefix, bus_engine (memory / redis)
    "tests.fixtures.own_redis",  # own_redis: a redis-server of the test's own, to kill
    "tests.fixtures.app",  # settings (app_settings marker, overrides), client, users
    "tests.fixtures.commerce",  # commerce: the commerce service's ingest client
    "tests.fixtures.smtp",  # smtp_server
    "tests.fixtures.relay",  # relay: a push relay
    "tests.fixtures.clamd",  # clamd, clamd_factory: real ClamAV daemons with a test signature
    "tests.fixtures.browser",  # chromium (per module), tab: a headless browser tab
    "tests.fixtures.s3",  # s3_server: an S3-compatible server (moto) with a fresh bucket
]
