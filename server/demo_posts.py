"""The demo world's posts (`nexgate seed-demo`): one of each feature, on the demo users and
commerce entities of server/demo.py. Seeded once: a re-run finds them and adds nothing."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from server.domain.auth_tokens import Principal
from server.domain.context import Context
from server.domain.posts import collaboration, publishing, reading
from server.domain.posts.commands import CreatePostIn, PlanLinkIn


async def seed_posts(
    ctx: Context, users: dict[str, uuid.UUID], demo_id: Callable[[str], uuid.UUID]
) -> int:
    """Create the demo posts unless maya already has some; returns how many were created."""

    def who(name: str) -> Principal:
        return Principal(users[name], name, ("user",))

    grid = await reading.user_posts(ctx, who("maya"), "maya", limit=1, cursor=None)
    if grid["items"]:
        return 0
    posts: list[tuple[str, dict[str, Any]]] = [
        (
            "maya",
            {
                "content": "The Gaming Laptop is back at $maya_tech. Pay as low as $108/month 💳 "
                "#laptops #deals https://example.com/laptop-review",
                "product_ids": [demo_id("product:laptop")],
                "plans": [
                    PlanLinkIn(plan_id=demo_id("plan:laptop:6")),
                    PlanLinkIn(plan_id=demo_id("plan:laptop:12"), is_featured=True),
                ],
                "group_ids": [demo_id("group:almost_full")],
            },
        ),
        (
            "ava",
            {
                "content": "Join my iPhone group! Still spots left, save $100 📱 @noah @sam "
                "#buytogether",
                "group_ids": [demo_id("group:open")],
                "product_ids": [demo_id("product:iphone")],
            },
        ),
        (
            "leo",
            {
                "content": "Retro Runner release party, see you there! $leos_kicks #sneakers",
                "event_ids": [demo_id("event:drop")],
                "product_ids": [demo_id("product:sneakers")],
                "collaborator_ids": [users["zoe"]],
            },
        ),
        (
            "noah",
            {"content": "Benchmarks of the new laptop coming soon.", "visibility": "followers"},
        ),
        ("sam", {"content": "A draft about headphones", "status": "draft"}),
    ]
    for author, body in posts:
        created = await publishing.create_post(ctx, who(author), CreatePostIn(**body))
        if created["status"] == "pending_collaboration":
            await collaboration.accept(ctx, who("zoe"), uuid.UUID(created["id"]))
    return len(posts)
