"""Typed settings: config/default.toml, an optional NEXGATE_CONFIG file, then env overrides."""

from __future__ import annotations

import ipaddress
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# The source tree's config/, else ./config (an installed package, e.g. the Docker image).
DEFAULT_CONFIG = next(
    (
        path
        for path in (
            Path(__file__).resolve().parent.parent / "config" / "default.toml",
            Path.cwd() / "config" / "default.toml",
        )
        if path.exists()
    ),
    Path("config/default.toml"),
)


class ConfigError(ValueError):
    """Settings the server refuses to start with (unsafe or unreadable); names the setting."""


# Placeholders of the example configs: a secret still reading like this was never filled in.
PLACEHOLDER_MARKERS = ("change_me", "changeme")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 1_048_576
    public_url: str = "http://127.0.0.1:8080"
    log_level: str = "INFO"
    log_format: Literal["auto", "json", "text"] = "auto"
    data_dir: str = "var"
    # SIGTERM drains: readiness 503 for drain_grace_s (load balancers notice), then clients
    # are asked to reconnect elsewhere over drain_spread_s, then in-flight work finishes.
    drain_grace_s: float = 2
    drain_spread_s: float = 5


def _comma_list(value: Any) -> Any:
    """An env override arrives as text: "a, b" is the list ["a", "b"]."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class HttpSettings(_Section):
    """What browsers and proxies may do (server/http/web_security.py)."""

    # Web origins ("https://app.example.com") allowed to call the API from a browser: CORS
    # with credentials, and cookie-authenticated writes. Empty: same-origin pages only.
    allowed_origins: list[str] = []
    # Addresses / CIDRs of reverse proxies whose X-Forwarded-For / Forwarded headers are
    # believed. Empty: the TCP peer is the client.
    trusted_proxies: list[str] = []

    @field_validator("allowed_origins", "trusted_proxies", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return _comma_list(value)

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        origins = []
        for origin in value:
            scheme, sep, rest = origin.strip().rstrip("/").lower().partition("://")
            if origin.strip() == "*":
                raise ValueError("'*' cannot be allowed with credentials: list the origins")
            if not sep or scheme not in ("http", "https") or not rest or "/" in rest:
                raise ValueError(f"{origin!r} is not an origin like https://app.example.com")
            origins.append(f"{scheme}://{rest}")
        return origins

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for network in value:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ValueError(f"{network!r} is not an IP address or CIDR") from None
        return value


class DatabaseSettings(_Section):
    url: str = ""
    pool_min: int = 1
    pool_max: int = 10
    migrate_on_start: bool = True


class RedisSettings(_Section):
    url: str = ""
    prefix: str = "ng:"
    # What rate limiting does while Redis fails: "open" allows (metric + log line),
    # "unavailable" answers 503 with Retry-After.
    rate_limit_on_failure: Literal["open", "unavailable"] = "open"


class AuthSettings(_Section):
    jwt_secret: str = ""
    access_token_ttl_s: int = 900
    refresh_token_ttl_s: int = 604_800
    password_reset_ttl_s: int = 3600
    # "verify_email" (default): registration answers alike for a fresh and a taken email and
    # a new account signs in once its email is verified. "open": signed in at once, 409 on a
    # taken email (that tells anyone which emails have accounts: for development only).
    registration: Literal["verify_email", "open"] = "verify_email"
    email_verification_ttl_s: int = 86_400
    # An account whose email was never verified is deleted after this long (a daily job), so a
    # sign-up with someone else's email or a squatted username does not hold them for ever.
    unverified_account_ttl_s: int = 7 * 86_400
    refresh_cookie_name: str = "nexgate_refresh"
    cookie_secure: bool = False
    session_cookie_name: str = "nexgate_session"
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536


class SmtpSettings(_Section):
    host: str = ""
    port: int = 25
    username: str = ""
    password: str = ""
    starttls: bool = False
    sender: str = "Nexgate <no-reply@nexgate.local>"


class RateLimit(BaseModel):
    count: int
    window_s: int

    @classmethod
    def parse(cls, text: str) -> RateLimit:
        count, _, window = text.partition("/")
        return cls(count=int(count), window_s=int(window or 3600))


class RateLimitSettings(_Section):
    api: RateLimit = RateLimit(count=1000, window_s=3600)
    follow: RateLimit = RateLimit(count=50, window_s=3600)
    post: RateLimit = RateLimit(count=50, window_s=3600)
    comment: RateLimit = RateLimit(count=100, window_s=3600)
    like: RateLimit = RateLimit(count=200, window_s=3600)
    message: RateLimit = RateLimit(count=100, window_s=3600)
    login_per_account: RateLimit = RateLimit(count=10, window_s=900)
    login_per_ip: RateLimit = RateLimit(count=50, window_s=900)
    forgot_password_per_ip: RateLimit = RateLimit(count=10, window_s=3600)
    forgot_password_global: RateLimit = RateLimit(count=1000, window_s=3600)
    register_per_ip: RateLimit = RateLimit(count=10, window_s=3600)
    register_global: RateLimit = RateLimit(count=1000, window_s=3600)
    resend_verification_per_ip: RateLimit = RateLimit(count=10, window_s=3600)
    resend_verification_per_email: RateLimit = RateLimit(count=3, window_s=3600)
    notify_per_actor: RateLimit = RateLimit(count=30, window_s=3600)

    @field_validator("*", mode="before")
    @classmethod
    def _parse(cls, value: Any) -> Any:
        return RateLimit.parse(value) if isinstance(value, str) else value


class GatewaySettings(_Section):
    heartbeat_interval_ms: int = 30_000
    hello_timeout_s: float = 10
    max_frame_bytes: int = 65_536
    frame_budget: int = 120
    frame_budget_window_s: float = 60
    outbound_queue: int = 256
    resume_log_depth: int = 1000
    resume_log_age_s: int = 3600
    longpoll_timeout_s: float = 25
    presence_ttl_s: int = 90
    # Live sockets one user may hold on one node; a new one past it closes their oldest (4013).
    max_sockets_per_user: int = 10
    # Lifetime of a single-use SSE stream ticket (POST /api/gateway/tickets).
    stream_ticket_ttl_s: float = 30
    # Admission control (issue 15): identify / resume handshakes running at once on a node;
    # the rest wait their turn in arrival order, so a reconnect storm cannot starve sends.
    max_concurrent_syncs: int = 32
    # Garbage-collection policy of the serving process (server/gc_policy.py): freeze the
    # long-lived objects after warm-up and periodically, one full collection per interval.
    gc_policy: bool = True
    gc_threshold0: int = 700
    gc_warmup_s: float = 1
    gc_freeze_interval_s: float = 1
    gc_full_collect_interval_s: float = 900


class JobSettings(_Section):
    in_process_worker: bool = True
    poll_interval_s: float = 1.0
    max_attempts: int = 8
    concurrency: int = 4
    lease_s: float = 60
    retry_base_s: float = 5
    retry_max_s: float = 3600
    shutdown_grace_s: float = 10
    # `nexgate worker` serves /metrics, /healthz and /readyz here (0: off).
    metrics_port: int = 9102
    digest_hour_utc: int = 8
    digest_weekday: int = 0


class PushSettings(_Section):
    webhook_url: str = ""
    webhook_secret: str = ""
    webhook_timeout_s: float = 10


class CommerceSettings(_Section):
    service_token: str = ""


class MessagingSettings(_Section):
    edit_window_s: int = 900
    max_message_chars: int = 4000
    # How often the coalescing NEW_MESSAGE writer runs (a burst within it is one update).
    notify_coalesce_ms: int = 50


class PostSettings(_Section):
    # Replies nest this deep at most (a top-level comment is depth 0); a reply to a reply at
    # the limit attaches to that reply's parent, as Instagram does.
    comment_max_depth: int = Field(3, ge=1, le=20)
    max_collaborators: int = Field(10, ge=1, le=50)
    replies_inlined: int = Field(3, ge=0, le=20)  # first replies shown under each comment


class FeedSettings(_Section):
    # Authors with at least this many followers are not fanned out on write: their posts are
    # pulled at read time and pushed live on one `feed:<author>` topic (the hybrid).
    fanout_threshold: int = Field(10_000, ge=1)
    fanout_batch: int = Field(1000, ge=1, le=10_000)  # followers per fan-out page
    timeline_cap: int = Field(800, ge=50)  # newest entries kept per home timeline
    timeline_ttl_s: int = Field(7 * 86_400, ge=60)  # an unread timeline is dropped (rebuilt)
    explore_window_h: int = Field(48, ge=1)  # explore ranks posts this recent
    explore_candidates: int = Field(500, ge=10, le=5000)  # the snapshot's size
    explore_cache_s: float = Field(60, ge=0)
    trending_window_h: int = Field(6, ge=1, le=48)
    trending_baseline_days: int = Field(7, ge=1, le=30)
    trending_min_uses: int = Field(3, ge=1)  # in the window, to trend at all
    trending_cache_s: float = Field(60, ge=0)


class EventSettings(_Section):
    # An outbox row older than this was not published by its node (it died, or its bus was
    # down): any node's sweeper republishes it. Above the sink's own retry budget (~2 s).
    republish_after_s: float = 10
    sweep_interval_s: float = 2


class MediaSettings(_Section):
    # Where uploads live: "local" (files under `local_dir`, served by this server at /media/)
    # or "s3" (an S3-compatible bucket; public/CDN base URL, else presigned URLs).
    storage: Literal["local", "s3"] = "local"
    local_dir: str = ""  # default: <server.data_dir>/media
    # Resumable uploads in flight spool here (default: <server.data_dir>/uploads).
    spool_dir: str = ""
    s3_bucket: str = ""
    s3_prefix: str = ""
    s3_endpoint_url: str = ""
    s3_region: str = "us-east-1"
    s3_access_key_id: str = ""
    s3_secret_access_key: str = ""
    s3_public_base_url: str = ""  # CDN in front of the bucket; empty: presigned URLs
    s3_presign_ttl_s: int = 3600
    max_image_bytes: int = 10 * 1024 * 1024
    max_video_bytes: int = 100 * 1024 * 1024
    max_image_pixels: int = 50_000_000  # decompression-bomb guard
    max_video_pixels: int = 3840 * 2160  # sources up to 4K
    max_video_duration_s: float = 600
    video_heights: list[int] = [480, 720, 1080]
    # Per-user: uploads started per window, and bytes kept (processing or ready media).
    upload_rate: RateLimit = RateLimit(count=60, window_s=3600)
    quota_bytes: int = 2 * 1024 * 1024 * 1024
    unattached_ttl_s: int = 86_400
    released_message_retention_s: int = 90 * 86_400  # spec: deleted messages kept 90 days
    resumable_ttl_s: int = 86_400
    # clamd address ("tcp://host:3310" or "unix:///run/clamav/clamd.ctl"); empty: no scanning.
    scan_clamd_address: str | None = None
    scan_timeout_s: float = 30
    # Worker processes for decoding / resizing / transcoding (0: threads; see server/media/cpu.py).
    cpu_workers: int = 2

    @field_validator("upload_rate", mode="before")
    @classmethod
    def _parse_rate(cls, value: Any) -> Any:
        return RateLimit.parse(value) if isinstance(value, str) else value


class Settings(_Section):
    server: ServerSettings = ServerSettings()
    http: HttpSettings = HttpSettings()
    database: DatabaseSettings = DatabaseSettings()
    redis: RedisSettings = RedisSettings()
    auth: AuthSettings = AuthSettings()
    smtp: SmtpSettings = SmtpSettings()
    rate_limits: RateLimitSettings = RateLimitSettings()
    gateway: GatewaySettings = GatewaySettings()
    jobs: JobSettings = JobSettings()
    push: PushSettings = PushSettings()
    commerce: CommerceSettings = CommerceSettings()
    messaging: MessagingSettings = MessagingSettings()
    posts: PostSettings = PostSettings()
    events: EventSettings = EventSettings()
    feeds: FeedSettings = FeedSettings()
    media: MediaSettings = MediaSettings()

    @property
    def data_path(self) -> Path:
        return Path(self.server.data_dir).resolve()


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_secret_file(name: str, path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read {path!r}: {exc.strerror}") from None


def _secret_files(env: dict[str, str]) -> dict[str, str]:
    """`X_FILE=/path` (a Kubernetes / Docker secret mounted as a file) reads as `X=<contents>`,
    for every NEXGATE_* setting and DATABASE_URL / REDIS_URL."""
    resolved = dict(env)
    for name, path in env.items():
        if not name.endswith("_FILE") or not path:
            continue
        target = name[: -len("_FILE")]
        if target == "NEXGATE_CONFIG" or not (
            target.startswith("NEXGATE_") or target in ("DATABASE_URL", "REDIS_URL")
        ):
            continue
        if env.get(target):
            raise ConfigError(f"set {target} or {name}, not both")
        resolved[target] = _read_secret_file(name, path)
        del resolved[name]
    return resolved


def _env_overrides(env: dict[str, str]) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    sections = Settings.model_fields
    env = _secret_files(env)
    for name, value in env.items():
        if not name.startswith("NEXGATE_") or name == "NEXGATE_CONFIG":
            continue
        rest = name[len("NEXGATE_") :].lower()
        for section in sections:
            if rest.startswith(section + "_"):
                overrides.setdefault(section, {})[rest[len(section) + 1 :]] = value
                break
    if env.get("DATABASE_URL"):
        overrides.setdefault("database", {})["url"] = env["DATABASE_URL"]
    if env.get("REDIS_URL"):
        overrides.setdefault("redis", {})["url"] = env["REDIS_URL"]
    return overrides


def load_settings(
    path: str | Path | None = None,
    env: dict[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Read default.toml, then the file at `path` or $NEXGATE_CONFIG, then env, then kwargs."""
    env = dict(os.environ) if env is None else env
    data: dict[str, Any] = {}
    if DEFAULT_CONFIG.exists():
        data = tomllib.loads(DEFAULT_CONFIG.read_text())
    extra_path = path or env.get("NEXGATE_CONFIG")
    if extra_path:
        data = _merge(data, tomllib.loads(Path(extra_path).read_text()))
    data = _merge(data, _env_overrides(env))
    data = _merge(data, overrides)
    settings = Settings.model_validate(data)
    check_safe(settings)
    return settings


def _placeholders(section: str, model: BaseModel) -> list[str]:
    found = []
    for key, value in model:
        if isinstance(value, str) and any(m in value.lower() for m in PLACEHOLDER_MARKERS):
            found.append(f"{section}.{key}")
    return found


def check_safe(settings: Settings) -> None:
    """Refuse settings that would run but be unsafe: placeholder secrets, and a multi-node
    deployment (Redis) without a shared signing secret (each node would generate its own, and
    a token issued by one would fail on the others)."""
    placeholders = [name for section, model in settings for name in _placeholders(section, model)]
    if placeholders:
        raise ConfigError(
            f"{', '.join(placeholders)}: still the example's CHANGE_ME placeholder; set a real "
            "value (env NEXGATE_<SECTION>_<KEY>, or NEXGATE_<SECTION>_<KEY>_FILE for a file)"
        )
    if settings.redis.url and not settings.auth.jwt_secret:
        raise ConfigError(
            "auth.jwt_secret is required with redis.url (several nodes must share it; it also "
            "keys the session cookies): set NEXGATE_AUTH_JWT_SECRET or "
            "NEXGATE_AUTH_JWT_SECRET_FILE"
        )
