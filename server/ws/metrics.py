"""Prometheus metrics of the gateway (module-level, like server/http/metrics.py)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CONNECTIONS = Gauge(
    "nexgate_gateway_connections", "Open gateway connections", ["transport", "encoding"]
)
FRAMES_IN = Counter("nexgate_gateway_frames_in_total", "Frames received from clients", ["op"])
FRAMES_OUT = Counter("nexgate_gateway_frames_out_total", "Frames sent to clients", ["op"])
RESUMES = Counter("nexgate_gateway_resumes_total", "Resume attempts", ["result"])
SLOW_CONSUMERS = Counter(
    "nexgate_gateway_slow_consumer_disconnects_total",
    "Connections dropped because their outbound queue overflowed",
)
BACKLOGGED = Counter(
    "nexgate_gateway_outbound_backlogs_total",
    "Times a socket's send buffer was full and frames had to queue in its outbound backlog",
)
CLOSES = Counter("nexgate_gateway_closes_total", "Connections closed by the server", ["code"])
CALLS = Counter("nexgate_gateway_calls_total", "Gateway calls", ["method", "result"])
DELIVERY_LATENCY = Histogram(
    "nexgate_gateway_delivery_seconds",
    "Event publish to written-to-socket latency (observed once per event per node, after the "
    "last local socket was written)",
    ["kind"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)

# Pre-bound children for the hot paths (a label lookup per frame is measurable).
_in: dict[str, Counter] = {}
_out: dict[str, Counter] = {}


def frame_in(op: str) -> Counter:
    child = _in.get(op)
    if child is None:
        child = _in[op] = FRAMES_IN.labels(op if len(_in) < 64 else "other")
    return child


def frame_out(op: str) -> Counter:
    child = _out.get(op)
    if child is None:
        child = _out[op] = FRAMES_OUT.labels(op)
    return child


USER_LATENCY = DELIVERY_LATENCY.labels("user")
TOPIC_LATENCY = DELIVERY_LATENCY.labels("topic")
DRAINED = Counter(
    "nexgate_gateway_drained_total",
    "Sockets and SSE streams asked to reconnect elsewhere by a drain",
)

# Admission control of identify / resume (issue 15): how many run, wait, and for how long.
SYNCS_RUNNING = Gauge("nexgate_gateway_syncs_running", "Identify / resume handshakes running now")
SYNCS_QUEUED = Gauge(
    "nexgate_gateway_syncs_queued",
    "Identify / resume handshakes waiting for admission (gateway.max_concurrent_syncs)",
)
SYNC_WAIT = Histogram(
    "nexgate_gateway_sync_admission_wait_seconds",
    "How long an identify / resume waited for admission before it ran",
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
