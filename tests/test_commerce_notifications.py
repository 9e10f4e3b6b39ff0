"""The commerce notifications the spec's scenarios need: GROUP_JOINED to a buy-together group's
creator when someone joins through the ingest API (batched per group), GROUP_FULL to every
participant when the group fills."""

from __future__ import annotations

import pytest

from tests.commerce_support import COMMERCE_SETTINGS
from tests.helpers import register

pytestmark = pytest.mark.app_settings(**COMMERCE_SETTINGS)


async def _items(client, user) -> list[dict]:
    return (await (await client.get("/api/notifications", headers=user.auth)).json())["items"]


async def test_joins_notify_the_creator_and_a_full_group_everyone(client, commerce, alice) -> None:
    shop = await commerce.shop(alice.id, "group_shop")
    product = await commerce.product(shop, "Phone")
    group = await commerce.group(product, alice.id, spots=3)
    members = [await register(client, f"member{i}") for i in range(3)]
    for member in members[:2]:
        await commerce.join(group, member.id)
    [joined] = [n for n in await _items(client, alice) if n["type"] == "group_joined"]
    assert joined["actor_count"] == 2 and "joined your buy-together group" in joined["content"]
    assert not [n for n in await _items(client, members[0]) if n["type"] == "group_full"]
    await commerce.join(group, members[2].id)
    for member in members:
        full = [n for n in await _items(client, member) if n["type"] == "group_full"]
        assert len(full) == 1 and full[0]["entity_id"] == group
    # A repeated join (same version) notifies nobody again.
    before = len(await _items(client, members[0]))
    await commerce.join(group, members[0].id)
    assert len(await _items(client, members[0])) == before
