"""Gateway topics of feeds: `feed:<author_id>`, the live feed of an author whose posts are
pulled at read time (followers past `feeds.fanout_threshold`). A session may subscribe when its
user follows the author (accepted) and neither has blocked the other, or is the author; a
block later re-asks this authorizer (topics.recheck) and ends the subscription. Events carry
ids only (protocol/PROTOCOL.md, "Feed pushes")."""

from __future__ import annotations

from server.domain.auth_tokens import Principal
from server.domain.context import Context
from server.domain.feeds.live import may_follow_live
from server.ids import parse_uuid
from server.ws.calls import topic_authorizer


@topic_authorizer("feed")
async def can_follow_feed(ctx: Context, principal: Principal, entity_id: str) -> bool:
    author_id = parse_uuid(entity_id)
    if author_id is None:
        return False
    return await may_follow_live(ctx, principal, author_id)
