"""Helpers of the commerce tests: the settings of an app with a service token and a small client
for the ingest API that fills sensible defaults (the `commerce` fixture serves it)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from server.ids import new_id

SERVICE_TOKEN = "svc-test-token-0123456789"
SERVICE = {"X-Service-Token": SERVICE_TOKEN}
BASE = "/api/internal/commerce"
# The commerce ingest API enabled: pytestmark = pytest.mark.app_settings(**COMMERCE_SETTINGS)
COMMERCE_SETTINGS = {"commerce": {"service_token": SERVICE_TOKEN}}


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def now() -> datetime:
    return datetime.now(UTC)


class Commerce:
    """Calls the ingest API as a commerce service would."""

    def __init__(self, client) -> None:
        self.client = client

    async def put(self, path: str, body: dict[str, Any], expect: int | None = 200) -> dict:
        resp = await self.client.put(BASE + path, json=body, headers=SERVICE)
        data = await resp.json()
        if expect is not None:
            assert resp.status == expect, data
        return data

    async def delete(self, path: str, version: datetime | None = None, expect: int = 200) -> dict:
        params = {"updated_at": iso(version)} if version else None
        resp = await self.client.delete(BASE + path, params=params, headers=SERVICE)
        data = await resp.json()
        assert resp.status == expect, data
        return data

    async def shop(self, owner: str, handle: str, **fields: Any) -> str:
        shop_id = fields.pop("id", None) or str(new_id())
        body = {
            "handle": handle,
            "name": handle.replace("_", " ").title(),
            "owner_id": owner,
            "updated_at": iso(now()),
            **fields,
        }
        await self.put(f"/shops/{shop_id}", body)
        return shop_id

    async def product(self, shop_id: str, name: str, price: str = "100.00", **fields: Any) -> str:
        product_id = fields.pop("id", None) or str(new_id())
        body = {
            "shop_id": shop_id,
            "name": name,
            "price": price,
            "currency": "USD",
            "images": [f"https://cdn.example.com/{product_id}.jpg"],
            "updated_at": iso(now()),
            **fields,
        }
        await self.put(f"/products/{product_id}", body)
        return product_id

    async def group(
        self,
        product_id: str,
        creator: str,
        *,
        spots: int = 5,
        target: str = "80.00",
        expires_in: timedelta = timedelta(days=2),
        **fields: Any,
    ) -> str:
        group_id = fields.pop("id", None) or str(new_id())
        body = {
            "product_id": product_id,
            "creator_id": creator,
            "target_price": target,
            "total_spots": spots,
            "expires_at": iso(now() + expires_in),
            "updated_at": iso(now()),
            **fields,
        }
        await self.put(f"/groups/{group_id}", body)
        return group_id

    async def join(self, group_id: str, user_id: str, version: datetime | None = None) -> dict:
        return await self.put(
            f"/groups/{group_id}/participants/{user_id}", {"updated_at": iso(version or now())}
        )

    async def leave(self, group_id: str, user_id: str, version: datetime | None = None) -> dict:
        return await self.delete(f"/groups/{group_id}/participants/{user_id}", version or now())

    async def plan(self, product_id: str, months: int, monthly: str, total: str, **fields) -> str:
        plan_id = fields.pop("id", None) or str(new_id())
        body = {
            "product_id": product_id,
            "duration_months": months,
            "monthly_amount": monthly,
            "total_cost": total,
            "updated_at": iso(now()),
            **fields,
        }
        await self.put(f"/installment-plans/{plan_id}", body)
        return plan_id

    async def event(self, title: str, starts_in: timedelta = timedelta(days=7), **fields) -> str:
        event_id = fields.pop("id", None) or str(new_id())
        body = {
            "title": title,
            "starts_at": iso(now() + starts_in),
            "ends_at": iso(now() + starts_in + timedelta(hours=3)),
            "location_name": "Main Hall",
            "ticket_status": "available",
            "price_min": "25.00",
            "price_max": "80.00",
            "currency": "USD",
            "updated_at": iso(now()),
            **fields,
        }
        await self.put(f"/events/{event_id}", body)
        return event_id


def random_id() -> str:
    return str(uuid.uuid4())
