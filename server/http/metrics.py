"""Prometheus metrics of the HTTP side, and the /metrics endpoint."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

HTTP_REQUESTS = Counter(
    "nexgate_http_requests_total", "HTTP requests handled", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "nexgate_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
DB_POOL_IN_USE = Gauge("nexgate_db_pool_in_use", "Database connections checked out")
DB_POOL_SIZE = Gauge("nexgate_db_pool_size", "Database connections open")
DB_POOL_MAX = Gauge("nexgate_db_pool_max", "The database pool's maximum size (database.pool_max)")
READY = Gauge(
    "nexgate_ready", "1 when the last readiness check passed (database, bus, not draining)"
)


def render_metrics() -> tuple[bytes, str]:
    return generate_latest(), CONTENT_TYPE_LATEST
