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


class ProfilePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

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
    user_id: uuid.UUID
    posts_count: int
    followers_count: int
    following_count: int
    likes_received: int


class FollowOut(BaseModel):
    status: str
    created: bool
    follow_id: uuid.UUID | None = None


class FollowRequestOut(UserOut):
    follow_id: uuid.UUID


class AcceptOut(BaseModel):
    status: str
    follow_id: uuid.UUID
    follower_id: uuid.UUID


# Fixed paths first: "blocked" and "muted" are not usernames.


@routes.get("/api/users/blocked")
@endpoint("Users you have blocked", query=PageQuery, response=Page[UserOut], tags=TAGS)
async def blocked(request: web.Request, query: PageQuery) -> dict:
    return await graph.list_blocked(
        request.app[CONTEXT], principal(request), query.limit, query.cursor
    )


@routes.get("/api/users/muted")
@endpoint("Users you have muted", query=PageQuery, response=Page[UserOut], tags=TAGS)
async def muted(request: web.Request, query: PageQuery) -> dict:
    return await graph.list_muted(
        request.app[CONTEXT], principal(request), query.limit, query.cursor
    )


@routes.get("/api/users/{ref}")
@endpoint("A profile, by id (a UUID) or username", response=UserOut, tags=TAGS, errors=(404,))
async def get_user(request: web.Request) -> dict:
    return await accounts.get_profile(
        request.app[CONTEXT], principal(request), request.match_info["ref"]
    )


@routes.patch("/api/users/{id}")
@endpoint(
    "Edit your own profile", body=ProfilePatch, response=UserOut, tags=TAGS, errors=(403, 404, 422)
)
async def patch_user(request: web.Request, body: ProfilePatch) -> dict:
    return await accounts.update_profile(
        request.app[CONTEXT],
        principal(request),
        path_id(request),
        body.model_dump(exclude_unset=True),
    )


@routes.get("/api/users/{ref}/stats")
@endpoint("Profile statistics", response=StatsOut, tags=TAGS, errors=(404,))
async def stats(request: web.Request) -> dict:
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
)
async def followers(request: web.Request, query: PageQuery) -> dict:
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
)
async def following(request: web.Request, query: PageQuery) -> dict:
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
)
async def follow(request: web.Request) -> dict:
    return await graph.follow(request.app[CONTEXT], principal(request), request.match_info["ref"])


@routes.delete("/api/users/{ref}/unfollow")
@endpoint("Unfollow, or withdraw a follow request", status=204, tags=TAGS, errors=(404, 429))
async def unfollow(request: web.Request) -> None:
    await graph.unfollow(request.app[CONTEXT], principal(request), request.match_info["ref"])


@routes.post("/api/users/{ref}/block")
@endpoint(
    "Block: removes follows both ways; nobody is notified", status=204, tags=TAGS, errors=(404, 422)
)
async def block(request: web.Request) -> None:
    await graph.block(request.app[CONTEXT], principal(request), request.match_info["ref"])


@routes.delete("/api/users/{ref}/unblock")
@endpoint("Unblock", status=204, tags=TAGS, errors=(404, 422))
async def unblock(request: web.Request) -> None:
    await graph.unblock(request.app[CONTEXT], principal(request), request.match_info["ref"])


@routes.post("/api/users/{ref}/mute")
@endpoint(
    "Mute: silently hide their content from your views", status=204, tags=TAGS, errors=(404, 422)
)
async def mute(request: web.Request) -> None:
    await graph.mute(request.app[CONTEXT], principal(request), request.match_info["ref"])


@routes.delete("/api/users/{ref}/unmute")
@endpoint("Unmute", status=204, tags=TAGS, errors=(404, 422))
async def unmute(request: web.Request) -> None:
    await graph.unmute(request.app[CONTEXT], principal(request), request.match_info["ref"])


@routes.get("/api/follows/requests")
@endpoint(
    "Pending follow requests to you", query=PageQuery, response=Page[FollowRequestOut], tags=TAGS
)
async def requests(request: web.Request, query: PageQuery) -> dict:
    return await graph.list_requests(
        request.app[CONTEXT], principal(request), query.limit, query.cursor
    )


@routes.post("/api/follows/{id}/accept")
@endpoint("Accept a follow request", response=AcceptOut, tags=TAGS, errors=(404, 422))
async def accept(request: web.Request) -> dict:
    return await graph.accept_request(request.app[CONTEXT], principal(request), path_id(request))


@routes.post("/api/follows/{id}/decline")
@endpoint("Decline a follow request (it is deleted)", status=204, tags=TAGS, errors=(404, 422))
async def decline(request: web.Request) -> None:
    await graph.decline_request(request.app[CONTEXT], principal(request), path_id(request))
