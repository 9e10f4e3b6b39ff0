"""/api/users and /api/follows: profiles, follow, block and mute."""

from __future__ import annotations

import uuid

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, model_validator

from server.app_keys import CONTEXT
from server.domain import accounts, graph
from server.http.endpoint import endpoint, path_id, principal
from server.http.schemas import Page, UserOut
from server.pagination import PageQuery

routes = web.RouteTableDef()
TAGS = ("users",)
USER_REF = "The user's id (a UUID) or username: any string"


class ProfilePatch(BaseModel):
    """A partial profile edit: only the given fields change; null clears an optional field."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"display_name": "Ada Lovelace", "bio": "Analyst.", "is_private": False}]
        },
    )

    display_name: str | None = Field(None, min_length=1, max_length=50)
    bio: str | None = Field(None, max_length=250)
    location: str | None = Field(None, max_length=100)
    website: str | None = Field(None, max_length=2048)
    profile_picture_url: str | None = Field(None, max_length=2048)
    cover_photo_url: str | None = Field(None, max_length=2048)
    is_private: bool | None = None

    @model_validator(mode="after")
    def _not_null(self) -> ProfilePatch:
        for name in ("display_name", "is_private"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class StatsOut(BaseModel):
    """A profile's counters."""

    user_id: uuid.UUID
    posts_count: int
    followers_count: int
    following_count: int
    likes_received: int


class FollowOut(BaseModel):
    """The follow: `accepted`, or `pending` while a private account has not accepted it;
    `created` is false when it already existed."""

    status: str
    created: bool
    follow_id: uuid.UUID | None = None


class FollowRequestOut(UserOut):
    """A pending follow request: who asked, and the request's id (to accept or decline it)."""

    follow_id: uuid.UUID


class AcceptOut(BaseModel):
    """An accepted follow request."""

    status: str
    follow_id: uuid.UUID
    follower_id: uuid.UUID


# Fixed paths first: "blocked" and "muted" are not usernames.


@routes.get("/api/users/blocked")
@endpoint(
    "Users you have blocked",
    query=PageQuery,
    response=Page[UserOut],
    tags=TAGS,
    operation_id="users.list_blocked",
)
async def blocked(request: web.Request, query: PageQuery) -> dict:
    """The accounts you blocked, most recent block first (only you see this list)."""
    return await graph.list_blocked(
        request.app[CONTEXT], principal(request), query.limit, query.cursor
    )


@routes.get("/api/users/muted")
@endpoint(
    "Users you have muted",
    query=PageQuery,
    response=Page[UserOut],
    tags=TAGS,
    operation_id="users.list_muted",
)
async def muted(request: web.Request, query: PageQuery) -> dict:
    """The accounts you muted, most recent first (only you see this list; they are not told)."""
    return await graph.list_muted(
        request.app[CONTEXT], principal(request), query.limit, query.cursor
    )


@routes.get("/api/users/{ref}")
@endpoint(
    "A profile, by id (a UUID) or username",
    response=UserOut,
    tags=TAGS,
    errors=(404,),
    operation_id="users.get",
    path_params={"ref": USER_REF},
)
async def get_user(request: web.Request) -> dict:
    """The public profile, with your relationship to the account (following, followed by,
    blocking, muting); your own profile also shows your email. 404 if they blocked you."""
    return await accounts.get_profile(
        request.app[CONTEXT], principal(request), request.match_info["ref"]
    )


@routes.patch("/api/users/{id}")
@endpoint(
    "Edit your own profile",
    body=ProfilePatch,
    response=UserOut,
    tags=TAGS,
    errors=(403, 404, 422),
    operation_id="users.update",
)
async def patch_user(request: web.Request, body: ProfilePatch) -> dict:
    """Changes only the given fields (403 for anyone else's profile). Making the account public
    accepts every pending follow request."""
    return await accounts.update_profile(
        request.app[CONTEXT],
        principal(request),
        path_id(request),
        body.model_dump(exclude_unset=True),
    )


@routes.get("/api/users/{ref}/stats")
@endpoint(
    "Profile statistics",
    response=StatsOut,
    tags=TAGS,
    errors=(404,),
    operation_id="users.stats",
    path_params={"ref": USER_REF},
)
async def stats(request: web.Request) -> dict:
    """Posts, followers, following and likes received, as counted on the profile."""
    return await accounts.get_stats(
        request.app[CONTEXT], principal(request), request.match_info["ref"]
    )


@routes.get("/api/users/{ref}/followers")
@endpoint(
    "Accepted followers, newest first",
    query=PageQuery,
    response=Page[UserOut],
    tags=TAGS,
    errors=(403, 404),
    operation_id="users.list_followers",
    path_params={"ref": USER_REF},
)
async def followers(request: web.Request, query: PageQuery) -> dict:
    """Who follows the account (accepted follows only). 403 for a private account you do not
    follow."""
    return await graph.list_followers(
        request.app[CONTEXT],
        principal(request),
        request.match_info["ref"],
        query.limit,
        query.cursor,
    )


@routes.get("/api/users/{ref}/following")
@endpoint(
    "Accounts followed, newest first",
    query=PageQuery,
    response=Page[UserOut],
    tags=TAGS,
    errors=(403, 404),
    operation_id="users.list_following",
    path_params={"ref": USER_REF},
)
async def following(request: web.Request, query: PageQuery) -> dict:
    """Whom the account follows (accepted follows only). 403 for a private account you do not
    follow."""
    return await graph.list_following(
        request.app[CONTEXT],
        principal(request),
        request.match_info["ref"],
        query.limit,
        query.cursor,
    )


@routes.post("/api/users/{ref}/follow")
@endpoint(
    "Follow (or request to follow a private account)",
    response=FollowOut,
    tags=TAGS,
    errors=(403, 404, 422, 429),
    operation_id="users.follow",
    path_params={"ref": USER_REF},
)
async def follow(request: web.Request) -> dict:
    """Follows a public account at once; for a private one, sends a follow request (status
    pending) it can accept. Following again is a no-op (created false). Rate limited."""
    return await graph.follow(request.app[CONTEXT], principal(request), request.match_info["ref"])


@routes.delete("/api/users/{ref}/unfollow")
@endpoint(
    "Unfollow, or withdraw a follow request",
    status=204,
    tags=TAGS,
    errors=(404, 429),
    operation_id="users.unfollow",
    path_params={"ref": USER_REF},
)
async def unfollow(request: web.Request) -> None:
    """Ends the follow or withdraws the pending request; a no-op if there is none."""
    await graph.unfollow(request.app[CONTEXT], principal(request), request.match_info["ref"])


@routes.post("/api/users/{ref}/block")
@endpoint(
    "Block: removes follows both ways; nobody is notified",
    status=204,
    tags=TAGS,
    errors=(404, 422),
    operation_id="users.block",
    path_params={"ref": USER_REF},
)
async def block(request: web.Request) -> None:
    """Blocks silently: follows both ways are removed and neither side is notified; to them
    your account no longer exists."""
    await graph.block(request.app[CONTEXT], principal(request), request.match_info["ref"])


@routes.delete("/api/users/{ref}/unblock")
@endpoint(
    "Unblock",
    status=204,
    tags=TAGS,
    errors=(404, 422),
    operation_id="users.unblock",
    path_params={"ref": USER_REF},
)
async def unblock(request: web.Request) -> None:
    """Lifts your block; follows removed by the block are not restored."""
    await graph.unblock(request.app[CONTEXT], principal(request), request.match_info["ref"])


@routes.post("/api/users/{ref}/mute")
@endpoint(
    "Mute: silently hide their content from your views",
    status=204,
    tags=TAGS,
    errors=(404, 422),
    operation_id="users.mute",
    path_params={"ref": USER_REF},
)
async def mute(request: web.Request) -> None:
    """Hides the account's content from your views without unfollowing; they are not told."""
    await graph.mute(request.app[CONTEXT], principal(request), request.match_info["ref"])


@routes.delete("/api/users/{ref}/unmute")
@endpoint(
    "Unmute",
    status=204,
    tags=TAGS,
    errors=(404, 422),
    operation_id="users.unmute",
    path_params={"ref": USER_REF},
)
async def unmute(request: web.Request) -> None:
    """Shows the account's content in your views again."""
    await graph.unmute(request.app[CONTEXT], principal(request), request.match_info["ref"])


@routes.get("/api/follows/requests")
@endpoint(
    "Pending follow requests to you",
    query=PageQuery,
    response=Page[FollowRequestOut],
    tags=TAGS,
    operation_id="follow_requests.list",
)
async def requests(request: web.Request, query: PageQuery) -> dict:
    """Who asked to follow your private account, newest first, each with the request's id."""
    return await graph.list_requests(
        request.app[CONTEXT], principal(request), query.limit, query.cursor
    )


@routes.post("/api/follows/{id}/accept")
@endpoint(
    "Accept a follow request",
    response=AcceptOut,
    tags=TAGS,
    errors=(404, 422),
    operation_id="follow_requests.accept",
)
async def accept(request: web.Request) -> dict:
    """The requester now follows you and is notified. 404 unless it is a pending request to
    you."""
    return await graph.accept_request(request.app[CONTEXT], principal(request), path_id(request))


@routes.post("/api/follows/{id}/decline")
@endpoint(
    "Decline a follow request (it is deleted)",
    status=204,
    tags=TAGS,
    errors=(404, 422),
    operation_id="follow_requests.decline",
)
async def decline(request: web.Request) -> None:
    """Deletes the request; the requester is not notified and may ask again."""
    await graph.decline_request(request.app[CONTEXT], principal(request), path_id(request))
