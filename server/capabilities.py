"""Every capability of the server, in one list, with what each one plugs in.

A capability is a slice of the product (accounts, notifications, commerce, messaging, ...).
It exposes up to four things, and the processes load them from `CAPABILITIES` only:

- `routes`: aiohttp route tables (server/http/<capability>.py), added by create_app;
- `gateway`: the module of its gateway call methods and topic authorizers
  (server/ws/methods/<capability>.py, registering with `@call` / `@topic_authorizer`),
  imported by create_app before the gateway starts;
- `jobs`: the module registering its job kinds and periodic jobs (`register` / `every` from
  server/jobs/registry.py), imported by every process that builds a Context (so `enqueue`
  refuses unknown kinds everywhere and workers know every handler);
- `lifecycles`: background work that runs while a server runs, as async generators taking
  the Context (start before `yield`, stop after), started in list order after the gateway.

Adding a capability: README.md, "Adding a capability".
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from server.domain.context import Context
from server.domain.group_expiry import run_group_expiry
from server.domain.message_notifier import run_message_notifier
from server.http import (
    auth,
    comments,
    commerce,
    feeds,
    gateway,
    health,
    image_tags,
    interactions,
    lists,
    media,
    media_files,
    media_tus,
    messaging,
    notifications,
    openapi,
    polls,
    posts,
    search,
    users,
)
from server.jobs.registry import seal
from server.jobs.runtime import run_in_process_worker

Lifecycle = Callable[[Context], AsyncIterator[None]]


@dataclass(frozen=True)
class Capability:
    name: str
    routes: Sequence[Any] = ()  # RouteTableDefs (or lists of route definitions)
    gateway: str | None = None  # module name under server.ws.methods
    jobs: str | None = None  # module name registering job kinds / periodic jobs
    lifecycles: Sequence[Lifecycle] = ()


CAPABILITIES: tuple[Capability, ...] = (
    Capability("platform", routes=(health.routes, openapi.routes)),
    Capability(
        "jobs",
        jobs="server.jobs.maintenance",
        lifecycles=(run_in_process_worker,),
    ),
    # Search, lists, muted words, suggestions (issue 14 part S). Before "accounts": its
    # /api/users/suggestions must match before the profile route /api/users/{ref}.
    Capability("discovery", routes=(lists.routes, search.routes)),
    Capability("accounts", routes=(auth.routes, users.routes), jobs="server.domain.account_jobs"),
    Capability("gateway", routes=(gateway.routes,), gateway="server.ws.methods.presence"),
    Capability(
        "notifications",
        routes=(notifications.routes,),
        gateway="server.ws.methods.notifications",
        jobs="server.domain.notification_jobs",
    ),
    Capability(
        "commerce",
        routes=(commerce.routes,),
        gateway="server.ws.methods.commerce",
        lifecycles=(run_group_expiry,),
    ),
    Capability(
        "messaging",
        routes=(messaging.routes,),
        gateway="server.ws.methods.messaging",
        lifecycles=(run_message_notifier,),  # the coalescing NEW_MESSAGE writer (issue 15)
    ),
    Capability(
        "media",
        routes=(media.routes, media_tus.routes, media_files.routes),
        jobs="server.domain.media.jobs",
    ),
    # Before posts: /api/posts/explore and /api/hashtags/trending precede /api/posts/{id} and
    # /api/hashtags/{tag} (aiohttp matches in registration order).
    Capability(
        "feeds",
        routes=(feeds.routes,),
        gateway="server.ws.methods.feeds",
        jobs="server.domain.feeds.jobs",
    ),
    Capability(
        "posts",
        routes=(
            posts.routes,
            image_tags.routes,
            interactions.routes,
            comments.routes,
            polls.routes,
        ),
        gateway="server.ws.methods.posts",
        jobs="server.domain.posts.jobs",
    ),
)


def load_jobs() -> None:
    """Register every capability's job kinds and periodic jobs (idempotent), then seal the
    registry: from then on enqueueing an unknown kind is a ValueError."""
    for capability in CAPABILITIES:
        if capability.jobs:
            importlib.import_module(capability.jobs)
    seal()


def load_gateway_methods() -> None:
    """Import every capability's gateway module so its `@call` registrations run."""
    for capability in CAPABILITIES:
        if capability.gateway:
            importlib.import_module(capability.gateway)


def install(app: web.Application, context_of: Callable[[web.Application], Context]) -> None:
    """Add every capability's routes and lifecycles to `app` (create_app calls this once)."""
    load_gateway_methods()
    for capability in CAPABILITIES:
        for table in capability.routes:
            app.router.add_routes(table)
        for lifecycle in capability.lifecycles:
            app.cleanup_ctx.append(_on_app(lifecycle, context_of))


def _on_app(
    lifecycle: Lifecycle, context_of: Callable[[web.Application], Context]
) -> Callable[[web.Application], AsyncIterator[None]]:
    def cleanup_context(app: web.Application) -> AsyncIterator[None]:
        return lifecycle(context_of(app))

    cleanup_context.__name__ = getattr(lifecycle, "__name__", "lifecycle")
    return cleanup_context
