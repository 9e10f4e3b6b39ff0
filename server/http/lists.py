"""HTTP routes of lists (curated feeds), muted words (keyword filters) and suggested users.
Thin wrappers of server/domain/search/{lists,muted_words,suggestions}.py.

`/api/users/suggestions` must be matched before `/api/users/{ref}` (a profile by username):
this capability's routes are installed before the accounts' (server/capabilities.py)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field

from server.domain.messaging.commands import Query
from server.domain.search import lists, muted_words, suggestions
from server.domain.search.commands import (
    ListIn,
    ListMemberIn,
    ListPatch,
    MutedWordIn,
    MutedWordPatch,
    PageIn,
)
from server.http.endpoint import context, endpoint, path_id, principal
from server.http.posts import PostPage
from server.http.schemas import UserOut

routes = web.RouteTableDef()
TAGS = ("lists",)
FILTERS = ("filters",)


class ListOut(BaseModel):
    """A list: `is_owner` says whether it is yours (only the owner changes it)."""

    id: uuid.UUID
    owner_id: uuid.UUID
    name: str
    description: str | None
    is_private: bool
    members_count: int
    is_owner: bool
    created_at: datetime
    updated_at: datetime


class ListPage(BaseModel):
    """Your lists, newest first."""

    items: list[ListOut]
    next_cursor: str | None


class MemberOut(UserOut):
    """A member, with when they were added."""

    added_at: datetime


class MemberPage(BaseModel):
    """Members, most recently added first."""

    items: list[MemberOut]
    next_cursor: str | None


class MemberAddedOut(BaseModel):
    """The membership; `added` is false when the user was already on the list."""

    list_id: uuid.UUID
    user_id: uuid.UUID
    added: bool


class MutedWordOut(BaseModel):
    """A muted word or phrase (stored NFC, lower case), until `expires_at` (null: forever)."""

    id: uuid.UUID
    phrase: str
    expires_at: datetime | None
    created_at: datetime


class MutedWordCreated(MutedWordOut):
    """`created` is false when the phrase was muted already (its expiry is updated)."""

    created: bool


class MutedWordPage(BaseModel):
    """Your muted words that still apply, newest first."""

    items: list[MutedWordOut]
    next_cursor: str | None


class SuggestionOut(UserOut):
    """A suggested account; `mutuals`: how many accounts you follow follow it."""

    mutuals: int


class Suggestions(BaseModel):
    """Accounts to follow, best first."""

    items: list[SuggestionOut]


class SuggestionQuery(Query):
    """How many suggestions (1-50)."""

    limit: int = Field(20, ge=1, le=50)


# Suggested users ----------------------------------------------------------------------------


@routes.get("/api/users/suggestions")
@endpoint(
    "Suggested users",
    query=SuggestionQuery,
    response=Suggestions,
    tags=("users",),
    operation_id="users.suggestions",
)
async def suggested_users(request: web.Request, query: SuggestionQuery) -> Any:
    """Friends of friends first (followed by the accounts you follow), then popular public
    accounts; never anyone you follow, asked to follow, blocked (either way) or muted."""
    return await suggestions.suggestions(context(request), principal(request), limit=query.limit)


# Muted words --------------------------------------------------------------------------------


@routes.get("/api/users/me/muted-words")
@endpoint(
    "Your muted words",
    query=PageIn,
    response=MutedWordPage,
    tags=FILTERS,
    operation_id="muted_words.list",
)
async def list_muted_words(request: web.Request, query: PageIn) -> Any:
    """Words and phrases that hide posts from your feeds and search, newest first (expired
    ones are not listed)."""
    return await muted_words.list_words(
        context(request), principal(request), limit=query.limit, cursor=query.cursor
    )


@routes.post("/api/users/me/muted-words")
@endpoint(
    "Mute a word",
    body=MutedWordIn,
    response=MutedWordCreated,
    status=201,
    tags=FILTERS,
    errors=(409, 422),
    operation_id="muted_words.create",
    examples={
        "a phrase for a week": {"phrase": "season finale", "expires_at": "2030-01-08T00:00:00Z"}
    },
)
async def mute_word(request: web.Request, body: MutedWordIn) -> Any:
    """Hide posts containing the word or phrase: whole words, any case (`Spoiler` hides
    "spoiler" and "#spoiler", not "spoilers"), until `expires_at` if given."""
    return await muted_words.mute_word(context(request), principal(request), body)


@routes.patch("/api/users/me/muted-words/{id}")
@endpoint(
    "Change a muted word's expiry",
    body=MutedWordPatch,
    response=MutedWordOut,
    tags=FILTERS,
    errors=(404, 422),
    operation_id="muted_words.update",
)
async def update_muted_word(request: web.Request, body: MutedWordPatch) -> Any:
    """Set when it stops hiding posts (null: never)."""
    return await muted_words.update_word(
        context(request), principal(request), path_id(request), body
    )


@routes.delete("/api/users/me/muted-words/{id}")
@endpoint(
    "Unmute a word", status=204, tags=FILTERS, errors=(404,), operation_id="muted_words.delete"
)
async def unmute_word(request: web.Request) -> None:
    """Posts with it show again."""
    await muted_words.unmute_word(context(request), principal(request), path_id(request))


# Lists --------------------------------------------------------------------------------------


@routes.post("/api/lists")
@endpoint(
    "Create a list",
    body=ListIn,
    response=ListOut,
    status=201,
    tags=TAGS,
    errors=(409, 422),
    operation_id="lists.create",
    examples={"a private list": {"name": "Close friends", "is_private": True}},
)
async def create_list(request: web.Request, body: ListIn) -> Any:
    """A named list of users; a private one is seen by you only."""
    return await lists.create_list(context(request), principal(request), body)


@routes.get("/api/lists")
@endpoint("Your lists", query=PageIn, response=ListPage, tags=TAGS, operation_id="lists.list")
async def my_lists(request: web.Request, query: PageIn) -> Any:
    """The lists you own, newest first."""
    return await lists.my_lists(
        context(request), principal(request), limit=query.limit, cursor=query.cursor
    )


@routes.get("/api/lists/{id}")
@endpoint("A list", response=ListOut, tags=TAGS, errors=(404,), operation_id="lists.get")
async def get_list(request: web.Request) -> Any:
    """Yours, or a public one (404 for someone else's private list, as for none)."""
    return await lists.get_list(context(request), principal(request), path_id(request))


@routes.patch("/api/lists/{id}")
@endpoint(
    "Change a list",
    body=ListPatch,
    response=ListOut,
    tags=TAGS,
    errors=(403, 404, 422),
    operation_id="lists.update",
)
async def update_list(request: web.Request, body: ListPatch) -> Any:
    """Rename it, describe it, make it private or public (owner only)."""
    return await lists.update_list(context(request), principal(request), path_id(request), body)


@routes.delete("/api/lists/{id}")
@endpoint("Delete a list", status=204, tags=TAGS, errors=(403, 404), operation_id="lists.delete")
async def delete_list(request: web.Request) -> None:
    """The list and its memberships go (the members are not told)."""
    await lists.delete_list(context(request), principal(request), path_id(request))


@routes.get("/api/lists/{id}/members")
@endpoint(
    "A list's members",
    query=PageIn,
    response=MemberPage,
    tags=TAGS,
    errors=(404,),
    operation_id="lists.members",
)
async def members(request: web.Request, query: PageIn) -> Any:
    """Most recently added first; accounts you cannot see are left out."""
    return await lists.members(
        context(request),
        principal(request),
        path_id(request),
        limit=query.limit,
        cursor=query.cursor,
    )


@routes.post("/api/lists/{id}/members")
@endpoint(
    "Add a user to a list",
    body=ListMemberIn,
    response=MemberAddedOut,
    status=201,
    tags=TAGS,
    errors=(403, 404, 409),
    operation_id="lists.add_member",
)
async def add_member(request: web.Request, body: ListMemberIn) -> Any:
    """Owner only; the user must be an account you can see (404 otherwise)."""
    return await lists.add_member(context(request), principal(request), path_id(request), body)


@routes.delete("/api/lists/{id}/members/{user_id}")
@endpoint(
    "Remove a user from a list",
    status=204,
    tags=TAGS,
    errors=(403, 404),
    operation_id="lists.remove_member",
)
async def remove_member(request: web.Request) -> None:
    """Owner only; 404 if they are not on it."""
    await lists.remove_member(
        context(request), principal(request), path_id(request), path_id(request, "user_id")
    )


@routes.get("/api/lists/{id}/feed")
@endpoint(
    "A list's feed",
    query=PageIn,
    response=PostPage,
    tags=TAGS,
    errors=(404,),
    operation_id="lists.feed",
)
async def feed(request: web.Request, query: PageIn) -> Any:
    """The members' posts newest first, as you may see them (blocks, mutes, hidden posts,
    your muted words, followers-only posts and private accounts all apply)."""
    return await lists.feed(
        context(request),
        principal(request),
        path_id(request),
        limit=query.limit,
        cursor=query.cursor,
    )
