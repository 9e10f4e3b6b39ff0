"""`nexgate seed-demo`: a small, coherent demo world so a newcomer sees real cards at once.

Users who follow each other, two shops with products, events, buy-together groups at every
status (open, almost full, full, expired, cancelled) and installment plans. Safe to re-run:
users and follows are created only when missing; commerce entities have fixed ids and are
re-ingested through the same domain actions the commerce services use, with fresh deadlines.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

from server.config import Settings
from server.demo_posts import seed_posts
from server.domain import graph
from server.domain.auth_tokens import Principal
from server.domain.commerce import commands, ingest
from server.domain.context import Context
from server.ids import new_id, utcnow
from server.store import users as users_store
from server.store.commerce import reads as commerce_store

DEMO_PASSWORD = "demo-pass-123"
_NS = uuid.UUID("6f1c3a52-9d0e-4c55-8a3b-2f6a9b1d7e10")

USERS = [
    ("maya", "Maya Chen", "Runs Maya's Tech: laptops, phones and audio."),
    ("leo", "Leo Martins", "Sneakers and streetwear at Leo's Kicks."),
    ("ava", "Ava Rossi", "Deal hunter. Organiser of buy-together groups."),
    ("noah", "Noah Kim", "Gamer, builder, occasional reviewer."),
    ("zoe", "Zoe Adams", "Runner. Collects limited sneakers."),
    ("sam", "Sam Patel", "Just here for the bargains."),
]
FOLLOWS = [
    ("ava", "maya"),
    ("ava", "leo"),
    ("ava", "noah"),
    ("noah", "ava"),
    ("noah", "maya"),
    ("zoe", "leo"),
    ("zoe", "ava"),
    ("sam", "maya"),
    ("sam", "ava"),
    ("sam", "zoe"),
    ("maya", "leo"),
    ("leo", "maya"),
]


def demo_id(name: str) -> uuid.UUID:
    """Stable ids, so a re-run updates the same entities instead of adding more."""
    return uuid.uuid5(_NS, name)


def _img(name: str) -> str:
    return f"https://picsum.photos/seed/nexgate-{name}/600/600"


async def _ensure_users(ctx: Context) -> dict[str, uuid.UUID]:
    existing = {}
    for username, _, _ in USERS:
        row = await users_store.get_by_username(ctx.db, username)
        if row is not None:
            existing[username] = row["id"]
    missing = [u for u in USERS if u[0] not in existing]
    if missing:
        password_hash = await ctx.passwords.hash(DEMO_PASSWORD)
        async with ctx.db.transaction() as tx:
            await users_store.bulk_insert_users(
                tx,
                [
                    (new_id(), u, f"{u}@demo.nexgate.dev", password_hash, name)
                    for u, name, _ in missing
                ],
            )
            for username, _, bio in missing:
                row = await users_store.get_by_username(tx, username)
                if row is not None:
                    await users_store.update_profile(tx, row["id"], {"bio": bio})
    ids = {}
    for username, _, _ in USERS:
        row = await users_store.get_by_username(ctx.db, username)
        if row is None:
            raise RuntimeError(f"demo user {username} could not be created (name taken?)")
        ids[username] = row["id"]
    return ids


async def _ensure_follows(ctx: Context, users: dict[str, uuid.UUID]) -> int:
    created = 0
    for follower, following in FOLLOWS:
        actor = Principal(users[follower], follower, ("user",))
        result = await graph.follow(ctx, actor, following)
        created += bool(result.get("created"))
    return created


async def seed_demo(ctx: Context) -> dict[str, Any]:
    users = await _ensure_users(ctx)
    follows = await _ensure_follows(ctx, users)
    now = utcnow()
    v = now  # every entity's version for this run: newer than any earlier run

    shops = {
        "maya_tech": ("Maya's Tech", "maya", "Laptops, phones and audio, tested in-house."),
        "leos_kicks": ("Leo's Kicks", "leo", "Sneakers, limited drops and streetwear."),
    }
    for handle, (name, owner, description) in shops.items():
        await ingest.upsert_shop(
            ctx,
            demo_id(f"shop:{handle}"),
            commands.ShopIn(
                handle=handle,
                name=name,
                owner_id=users[owner],
                logo_url=_img(f"logo-{handle}"),
                description=description,
                is_verified=handle == "maya_tech",
                updated_at=v,
            ),
        )

    products = {
        "laptop": ("maya_tech", 'Gaming Laptop 16"', "1200.00", "RTX graphics, 165 Hz screen."),
        "iphone": ("maya_tech", "iPhone 15 128GB", "899.00", "Unlocked, all colours."),
        "headphones": ("maya_tech", "Noise-Cancelling Headphones", "249.00", "30 h battery."),
        "camera": ("maya_tech", "Mirrorless Camera Kit", "1499.00", "24 MP, 18-55 mm lens."),
        "sneakers": ("leos_kicks", "Retro Runner Sneakers", "140.00", "Limited colourway."),
        "hoodie": ("leos_kicks", "Heavyweight Hoodie", "75.00", "Organic cotton."),
    }
    for key, (shop, name, price, description) in products.items():
        await ingest.upsert_product(
            ctx,
            demo_id(f"product:{key}"),
            commands.ProductIn(
                shop_id=demo_id(f"shop:{shop}"),
                name=name,
                description=description,
                images=[_img(key), _img(f"{key}-2")],
                price=Decimal(price),
                currency="USD",
                updated_at=v,
            ),
        )

    # (product, months, monthly, total, interest rate[, down payment])
    plans: list[tuple[str, int, str, str, str, *tuple[str, ...]]] = [
        ("laptop", 3, "400.00", "1200.00", "0"),
        ("laptop", 6, "200.00", "1200.00", "0"),
        ("laptop", 12, "108.34", "1300.00", "5"),
        ("iphone", 6, "149.84", "899.00", "0"),
        ("iphone", 12, "78.67", "944.00", "4.9"),
        ("camera", 6, "224.84", "1499.00", "0", "150.00"),
    ]
    for product, months, monthly, total, rate, *down in plans:
        await ingest.upsert_plan(
            ctx,
            demo_id(f"plan:{product}:{months}"),
            commands.PlanIn(
                product_id=demo_id(f"product:{product}"),
                duration_months=months,
                monthly_amount=Decimal(monthly),
                total_cost=Decimal(total),
                interest_rate=Decimal(rate),
                down_payment=Decimal(down[0] if down else "0"),
                updated_at=v,
            ),
        )

    # (key, product, creator, target, spots, expires in, members, state)
    groups = [
        ("open", "iphone", "ava", "799.00", 10, timedelta(days=3), ["ava", "noah", "sam"]),
        (
            "almost_full",
            "laptop",
            "noah",
            "1050.00",
            5,
            timedelta(hours=18),
            ["noah", "ava", "sam"],
        ),
        (
            "last_spot",
            "headphones",
            "sam",
            "199.00",
            4,
            timedelta(minutes=45),
            ["sam", "zoe", "ava"],
        ),
        ("full", "sneakers", "zoe", "110.00", 3, timedelta(days=1), ["zoe", "ava", "sam"]),
        ("expired", "camera", "ava", "1299.00", 6, timedelta(days=-1), ["ava", "noah"]),
        ("cancelled", "hoodie", "leo", "60.00", 8, timedelta(days=3), ["leo"]),
    ]
    for key, product, creator, target, spots, expires_in, members in groups:
        group_id = demo_id(f"group:{key}")
        await ingest.upsert_group(
            ctx,
            group_id,
            commands.GroupIn(
                product_id=demo_id(f"product:{product}"),
                creator_id=users[creator],
                target_price=Decimal(target),
                total_spots=spots,
                expires_at=now + expires_in,
                state="cancelled" if key == "cancelled" else "active",
                updated_at=v,
            ),
        )
        for member in members:
            await ingest.set_participation(ctx, group_id, users[member], joined=True, version=v)

    events: list[
        tuple[
            str,  # key
            str,  # title
            timedelta,  # starts in
            int,  # hours
            commands.TicketStatus,
            str,  # lowest price
            str,  # highest price
            str | None,  # venue
            str | None,  # address
            str,  # time zone
            str | None,  # organizer
        ]
    ] = [
        (
            "launch",
            "Spring Tech Launch Night",
            timedelta(days=5),
            3,
            "available",
            "0",
            "25.00",
            "Maya's Tech Store",
            "12 Market St, San Francisco",
            "America/Los_Angeles",
            "maya",
        ),
        (
            "drop",
            "Retro Runner Release Party",
            timedelta(days=12),
            4,
            "limited",
            "20.00",
            "60.00",
            "Leo's Kicks Flagship",
            "88 Canal St, New York",
            "America/New_York",
            "leo",
        ),
        (
            "concert",
            "Unboxed Live: Synthwave Set",
            timedelta(days=30),
            3,
            "sold_out",
            "45.00",
            "120.00",
            "Warehouse 9",
            "Berlin",
            "Europe/Berlin",
            None,
        ),
        (
            "workshop",
            "Camera Basics Workshop (online)",
            timedelta(days=2),
            2,
            "available",
            "0",
            "0",
            None,
            None,
            "UTC",
            "maya",
        ),
        (
            "past",
            "Winter Sneaker Swap",
            timedelta(days=-20),
            5,
            "sold_out",
            "10.00",
            "10.00",
            "Community Hall",
            "Austin",
            "America/Chicago",
            "leo",
        ),
    ]
    for key, title, starts_in, hours, tickets, low, high, venue, address, zone, who in events:
        start = (now + starts_in).replace(minute=0, second=0, microsecond=0)
        await ingest.upsert_event(
            ctx,
            demo_id(f"event:{key}"),
            commands.EventIn(
                title=title,
                description=f"{title}. Bring a friend.",
                image_url=_img(f"event-{key}"),
                starts_at=start,
                ends_at=start + timedelta(hours=hours),
                timezone=zone,
                location_name=venue,
                location_address=address,
                is_online=venue is None,
                ticket_status=tickets,
                price_min=Decimal(low),
                price_max=Decimal(high),
                currency="USD",
                organizer_id=users[who] if who else None,
                shop_id=demo_id("shop:maya_tech" if who == "maya" else "shop:leos_kicks")
                if who
                else None,
                updated_at=v,
            ),
        )

    posts_created = await seed_posts(ctx, users, demo_id)
    counts = await commerce_store.count_rows(ctx.db)
    return {
        "posts_created": posts_created,
        "users": sorted(users),
        "password": DEMO_PASSWORD,
        "follows_created": follows,
        "group_ids": {key: str(demo_id(f"group:{key}")) for key, *_ in groups},
        **counts,
    }


async def run_seed_demo(settings: Settings) -> dict[str, Any]:
    """Open the configured (or embedded) database and seed it: what `nexgate seed-demo` runs."""
    from server.bootstrap import context

    async with context(settings, migrate=True) as ctx:
        return await seed_demo(ctx)
