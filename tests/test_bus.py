"""The Bus contract (server/bus/base.py: Broker, UserLog, Presence, SessionStore,
TicketStore), run against
both engines through one parametrised fixture: per-user sequences, the resume log, fan-out,
presence (multi-device, multi-node) and session records."""

from __future__ import annotations

import asyncio
import inspect
import uuid

import pytest

from server.bus.base import Broker, Bus, Presence, SessionStore, TicketStore, UserLog
from server.bus.memory import MemoryBus
from server.bus.redis import RedisBus
from tests.helpers import drop_redis_prefix


async def _nodes(url: str):
    prefix = f"test:{uuid.uuid4().hex[:10]}:"
    nodes: list[RedisBus] = []

    async def make(**kwargs) -> RedisBus:
        node = RedisBus(url, prefix=prefix, **kwargs)
        await node.start()
        nodes.append(node)
        return node

    async def cleanup() -> None:
        for node in nodes:
            await node.close()
        await drop_redis_prefix(url, prefix)

    return make, cleanup


@pytest.fixture
async def redis_nodes(redis_url):
    """Factory of RedisBus nodes sharing one fresh key prefix (dropped afterwards)."""
    make, cleanup = await _nodes(redis_url)
    yield make
    await cleanup()


@pytest.fixture
async def make_bus(bus_engine, request):
    """Factory of buses of one engine: every contract test runs once per engine."""
    if bus_engine == "memory":

        async def make_memory(**kwargs):
            return MemoryBus(**kwargs)

        yield make_memory
        return
    make, cleanup = await _nodes(request.getfixturevalue("redis_url"))
    yield make
    await cleanup()


def _members(protocol: type) -> dict[str, inspect.Signature | None]:
    """The methods (with signatures) and attributes a protocol declares, its bases' included."""
    members: dict[str, inspect.Signature | None] = {}
    for cls in reversed(protocol.__mro__):
        if cls in (Broker, UserLog, Presence, SessionStore, TicketStore, Bus):
            members.update(dict.fromkeys(inspect.get_annotations(cls)))
            members.update(
                {
                    name: inspect.signature(value)
                    for name, value in vars(cls).items()
                    if inspect.iscoroutinefunction(value) and not name.startswith("_")
                }
            )
    return members


@pytest.mark.parametrize("protocol", [Broker, UserLog, Presence, SessionStore, TicketStore, Bus])
async def test_both_engines_implement_each_protocol_with_the_same_signatures(protocol):
    engines = [MemoryBus(), RedisBus("redis://127.0.0.1:1/0")]  # never connected
    try:
        for engine in engines:
            for name, signature in _members(protocol).items():
                member = getattr(engine, name, None)
                assert member is not None, f"{type(engine).__name__} lacks {name}"
                if signature is not None:
                    assert inspect.iscoroutinefunction(member), name
                    assert list(inspect.signature(member).parameters) == [
                        p for p in signature.parameters if p != "self"
                    ], f"{type(engine).__name__}.{name}{inspect.signature(member)}"
    finally:
        await engines[1].close()


async def test_each_user_has_a_gapless_sequence(make_bus):
    bus = await make_bus()
    a, b = uuid.uuid4(), uuid.uuid4()
    first = await bus.publish_user([a, b], "t.one", {"n": 1})
    second = await bus.publish_user([a], "t.two", {"n": 2})
    assert [(e.user_id, e.seq) for e in first] == [(a, 1), (b, 1)]
    assert second[0].seq == 2
    assert await bus.last_seq(a) == 2 and await bus.last_seq(b) == 1
    assert await bus.last_seq(uuid.uuid4()) == 0
    assert await bus.last_seqs([a, b]) == {a: 2, b: 1}


async def test_a_publish_logs_each_distinct_user_once(make_bus):
    bus = await make_bus()
    a, b = uuid.uuid4(), uuid.uuid4()
    assert await bus.publish_user([], "t.none", {}) == []
    events = await bus.publish_user([a, b, a], "t.dup", {})
    assert [(e.user_id, e.seq) for e in events] == [(a, 1), (b, 1)]
    assert [e.seq for e in await bus.events_after(a, 0)] == [1]


async def test_concurrent_publishes_get_distinct_consecutive_seqs(make_bus):
    bus = await make_bus()
    user = uuid.uuid4()
    results = await asyncio.gather(*(bus.publish_user([user], "t.n", {"i": i}) for i in range(50)))
    assert sorted(events[0].seq for events in results) == list(range(1, 51))
    assert [e.seq for e in await bus.events_after(user, 0)] == list(range(1, 51))


async def test_events_after_replays_in_order(make_bus):
    bus = await make_bus()
    user = uuid.uuid4()
    for n in range(1, 6):
        await bus.publish_user([user], "t.n", {"n": n, "id": user})
    events = await bus.events_after(user, 2)
    assert [e.seq for e in events] == [3, 4, 5]
    assert [e.data["n"] for e in events] == [3, 4, 5]
    assert str(events[0].data["id"]) == str(user)
    assert await bus.events_after(user, 5) == []
    assert await bus.events_after(uuid.uuid4(), 0) == []


async def test_every_event_and_position_names_the_logs_epoch(make_bus):
    bus = await make_bus()
    user = uuid.uuid4()
    epoch, seq = await bus.log_position(user)  # a fresh log is pinned to an epoch at once
    assert epoch and seq == 0
    events = await bus.publish_user([user], "t.n", {})
    assert (events[0].epoch, events[0].seq) == (epoch, 1)
    assert [e.epoch for e in await bus.events_after(user, 0, epoch)] == [epoch]
    # A cursor of another epoch never selects this log's events.
    assert await bus.events_after(user, 0, "another-epoch") is None
    assert await bus.log_position(user) == (epoch, 1)


async def test_a_new_engine_process_starts_new_epochs():
    before, after = MemoryBus(), MemoryBus()  # a restarted single node
    user = uuid.uuid4()
    assert (await before.log_position(user))[0] != (await after.log_position(user))[0]


async def test_a_redis_log_that_lost_its_history_starts_a_new_epoch(redis_nodes):
    node, other = await redis_nodes(), await redis_nodes()
    user = uuid.uuid4()
    for _ in range(3):
        await node.publish_user([user], "t.n", {})
    old_epoch, _ = await node.log_position(user)
    got: list = []
    other.user_listeners.append(got.append)
    # The counter is lost (a flush, an eviction, a failover) but a stale log stream remains.
    await node.redis.delete(node._seq_key(user))
    [event] = await node.publish_user([user], "t.after", {})
    assert event.epoch != old_epoch and event.seq == 1  # seq 1 again, in a new epoch
    # The leftover stream of the old epoch is gone: the new log holds only the new event.
    assert [(e.epoch, e.seq, e.type) for e in await node.events_after(user, 0)] == [
        (event.epoch, 1, "t.after")
    ]
    assert await node.events_after(user, 0, old_epoch) is None
    async with asyncio.timeout(5):
        while not [e for e in got if e.type == "t.after"]:  # noqa: ASYNC110 (a plain list)
            await asyncio.sleep(0.01)
    [seen] = [e for e in got if e.type == "t.after"]
    assert (seen.epoch, seen.seq) == (event.epoch, 1)  # other nodes learn the epoch too


async def test_log_depth_bounds_what_can_be_resumed(make_bus):
    bus = await make_bus(log_depth=3)
    user = uuid.uuid4()
    for n in range(1, 400):  # Redis trims approximately: publish well past the depth
        await bus.publish_user([user], "t.n", {"n": n})
    assert await bus.events_after(user, 1) is None
    tail = await bus.events_after(user, 396)
    assert [e.seq for e in tail] == [397, 398, 399]


async def test_log_age_bounds_what_can_be_resumed(make_bus):
    bus = await make_bus(log_age_s=1)
    user = uuid.uuid4()
    await bus.publish_user([user], "t.old", {})
    await asyncio.sleep(1.1)
    await bus.publish_user([user], "t.new", {})
    assert await bus.events_after(user, 0) is None
    assert [e.type for e in await bus.events_after(user, 1)] == ["t.new"]


async def test_memory_engine_forgets_idle_users_logs_but_not_their_seq():
    bus = MemoryBus(log_age_s=1)
    idle, active = uuid.uuid4(), uuid.uuid4()
    await bus.publish_user([idle], "t.old", {})
    await asyncio.sleep(1.1)
    await bus.publish_user([active], "t.new", {})
    assert idle not in bus._logs  # swept: an idle user no longer pins memory
    assert await bus.events_after(idle, 0) is None  # and cannot resume past the window
    assert await bus.events_after(idle, 1) == []
    assert [e.seq for e in await bus.publish_user([idle], "t.next", {})] == [2]


async def test_listeners_get_user_and_topic_events(make_bus):
    bus = await make_bus()
    got: list = []
    bus.user_listeners.append(got.append)

    async def on_topic(event):
        got.append(event)

    bus.topic_listeners.append(on_topic)
    user = uuid.uuid4()
    await bus.publish_user([user], "t.user", {"x": 1})
    await bus.publish_topic("poll:1", "poll.updated", {"votes": 3})
    for _ in range(100):
        if len(got) == 2:
            break
        await asyncio.sleep(0.01)
    user_event, topic_event = got
    assert (user_event.user_id, user_event.seq, user_event.type) == (user, 1, "t.user")
    assert user_event.data == {"x": 1} and user_event.published_at > 0
    assert (topic_event.topic, topic_event.type, topic_event.data) == (
        "poll:1",
        "poll.updated",
        {"votes": 3},
    )


async def test_presence_is_multi_device(make_bus):
    bus = await make_bus()
    user = uuid.uuid4()
    assert await bus.online_users([user]) == set()
    assert await bus.presence_join(user) is True
    assert await bus.online_users([user, uuid.uuid4()]) == {user}
    assert await bus.presence_leave(user) is True
    assert await bus.online_users([user]) == set()


async def test_sessions_are_kept_for_their_ttl(make_bus):
    bus = await make_bus()
    await bus.save_session("s1", {"user_id": "u", "topics": ["poll:1"]}, 60)
    assert await bus.load_session("s1") == {"user_id": "u", "topics": ["poll:1"]}
    assert await bus.load_session("nope") is None
    await bus.save_session("s2", {"user_id": "u"}, 1)
    await asyncio.sleep(1.1)
    assert await bus.load_session("s2") is None


# Redis only: several nodes on one Redis -----------------------------------------------------


async def test_nodes_share_one_sequence_and_see_each_others_events(redis_nodes):
    a, b = await redis_nodes(), await redis_nodes()
    user = uuid.uuid4()
    seen_on_b: list[int] = []
    b.user_listeners.append(lambda e: seen_on_b.append(e.seq))
    await asyncio.gather(
        *(node.publish_user([user], "t.n", {"i": i}) for i in range(40) for node in (a, b))
    )
    assert await a.last_seq(user) == 80
    for _ in range(200):
        if len(seen_on_b) == 80:
            break
        await asyncio.sleep(0.01)
    assert seen_on_b == list(range(1, 81))  # every event, in seq order, on the other node
    assert [e.seq for e in await b.events_after(user, 0)] == list(range(1, 81))


async def test_presence_across_nodes(redis_nodes):
    a, b = await redis_nodes(), await redis_nodes()
    user = uuid.uuid4()
    assert await a.presence_join(user) is True
    assert await b.presence_join(user) is False  # already online through node a
    assert await a.presence_leave(user) is False  # still online through node b
    assert await a.online_users([user]) == {user}
    assert await b.presence_leave(user) is True
    assert await a.online_users([user]) == set()


async def test_concurrent_first_joins_on_two_nodes_announce_once(redis_nodes):
    a, b = await redis_nodes(), await redis_nodes()
    for _ in range(10):
        user = uuid.uuid4()
        joined = await asyncio.gather(a.presence_join(user), b.presence_join(user))
        assert sorted(joined) == [False, True]
        left = await asyncio.gather(a.presence_leave(user), b.presence_leave(user))
        assert sorted(left) == [False, True]


async def test_a_crashed_nodes_presence_expires(redis_nodes):
    a, b = await redis_nodes(presence_ttl_s=1), await redis_nodes(presence_ttl_s=1)
    user = uuid.uuid4()
    await a.presence_join(user)
    assert await b.online_users([user]) == {user}
    await asyncio.sleep(1.2)  # node a never refreshed nor left
    assert await b.online_users([user]) == set()
    assert await b.presence_join(user) is True


async def test_presence_refresh_keeps_users_online(redis_nodes):
    node = await redis_nodes(presence_ttl_s=1)
    user = uuid.uuid4()
    await node.presence_join(user)
    for _ in range(3):
        await asyncio.sleep(0.5)
        await node.presence_refresh([user])
    assert await node.online_users([user]) == {user}


async def test_prefixes_isolate_deployments(redis_url, redis_nodes):
    node = await redis_nodes()
    other = RedisBus(redis_url, prefix=f"test:{uuid.uuid4().hex[:10]}:")
    await other.start()
    try:
        user = uuid.uuid4()
        await node.publish_user([user], "t.n", {})
        assert await other.last_seq(user) == 0
    finally:
        await other.close()


async def test_a_ticket_is_taken_once_by_one_of_many_concurrent_takers(make_bus):
    bus = await make_bus()
    await bus.put_ticket("t1", {"user_id": "u"}, 30)
    taken = await asyncio.gather(*(bus.take_ticket("t1") for _ in range(20)))
    assert [t for t in taken if t is not None] == [{"user_id": "u"}]
    assert await bus.take_ticket("t1") is None
    assert await bus.take_ticket("never-put") is None


async def test_a_ticket_expires_after_its_ttl(make_bus):
    bus = await make_bus()
    await bus.put_ticket("short", {"user_id": "u"}, 0.2)
    await bus.put_ticket("long", {"user_id": "v"}, 30)
    await asyncio.sleep(0.3)
    assert await bus.take_ticket("short") is None
    assert await bus.take_ticket("long") == {"user_id": "v"}
