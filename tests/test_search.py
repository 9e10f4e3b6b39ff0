"""Search through HTTP: users, posts, hashtags, commerce-linked posts and everything at once;
visibility (blocks both ways, private accounts, followers-only, deleted, muted accounts and
words, hidden posts), ranking a user notices, highlights, history and bad input."""

from __future__ import annotations

import pytest

from tests.commerce_support import COMMERCE_SETTINGS
from tests.helpers import expect_problem
from tests.posts_support import block, follow, make_private, post
from tests.search_support import found_posts, found_users, mute_word, search

pytestmark = pytest.mark.app_settings(**COMMERCE_SETTINGS)


async def test_posts_are_found_by_word_prefix_with_highlights(client, alice, bob) -> None:
    await post(client, alice, content="Gaming laptop for sale #deals")
    await post(client, alice, content="A quiet afternoon")
    result = await search(client, bob, "posts", "gam LAP")
    assert [i["content"] for i in result["items"]] == ["Gaming laptop for sale #deals"]
    text = result["items"][0]["content"]
    spans = [text[h["start"] : h["end"]] for h in result["items"][0]["highlights"]]
    assert spans == ["Gaming", "laptop"]
    assert await found_posts(client, bob, "#deals") == ["Gaming laptop for sale #deals"]
    assert await found_posts(client, bob, "afternoons") == []  # whole words, prefixes only
