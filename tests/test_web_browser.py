"""The web paths in a real headless Chromium: a page on the API's own origin, a sibling origin
(same host, another port: the same *site*, so SameSite=Strict cookies travel), a listed
cross-site web app and an unlisted cross-site page.

Finding 9 (issue 17): a sibling-origin page posted a `text/plain` login without a preflight,
the server parsed the JSON, answered 200 and the browser kept the session cookie; a following
`text/plain` message post created the message as that user."""

from __future__ import annotations

import uuid

import pytest

from server.app_keys import CONTEXT
from tests.browser_support import Tab, page_server
from tests.helpers import free_port
from tests.messaging_support import MESSAGING_SETTINGS, messages, open_dm

pytestmark = pytest.mark.app_settings(**MESSAGING_SETTINGS)


@pytest.fixture
def page_port() -> int:
    return free_port()


@pytest.fixture
def overrides(page_port: int) -> dict:
    # Only the web app's origin is listed; every other origin below is not.
    return {"http": {"allowed_origins": [f"http://webapp.test:{page_port}"]}}


def api(client) -> str:
    return str(client.make_url("")).rstrip("/")


def session_cookies(cookies: list[dict]) -> list[dict]:
    return [c for c in cookies if c["name"] == "nexgate_session"]


# A script's helper in the page: a fetch that reports {status, body} or {error} (CORS refusal).
FETCH = """
const call = async (url, init) => {
  try {
    const r = await fetch(url, init);
    if (r.type === 'opaque') return {opaque: true};
    const text = await r.text();
    return {status: r.status, body: text ? JSON.parse(text) : null,
            type: r.headers.get('content-type')};
  } catch (e) { return {error: String(e)}; }
};
"""


async def test_sibling_origin_cannot_log_in_or_post_with_text_plain(
    client, tab: Tab, page_port: int, alice, bob
):
    """Finding 9: the attack from http://127.0.0.1:<other port> gets no cookie and no message."""
    conversation = await open_dm(client, alice, bob)
    async with page_server(page_port):
        await tab.goto(f"http://127.0.0.1:{page_port}/attacker")
        result = await tab.run(
            FETCH
            + f"""
            const simple = (body) => ({{method: 'POST', mode: 'no-cors', credentials: 'include',
              headers: {{'Content-Type': 'text/plain'}}, body: JSON.stringify(body)}});
            await call('{api(client)}/api/auth/login',
                       simple({{login: 'alice', password: '{alice.password}'}}));
            await call('{api(client)}/api/conversations/{conversation}/messages',
                       simple({{content: 'forged by a sibling origin'}}));
            return document.cookie;
            """
        )
        assert result == ""
    assert session_cookies(await tab.cookies()) == []
    listed = await messages(client, alice, conversation)
    assert "forged by a sibling origin" not in [m["content"] for m in listed["items"]]


async def test_sibling_origin_cannot_ride_a_signed_in_session(
    client, tab: Tab, page_port: int, alice, bob
):
    """The victim signed in on the real origin; a sibling page posts with the victim's cookie
    (same site, so SameSite=Strict sends it): a text/plain message and a body-less follow are
    both refused, and nothing is created."""
    conversation = await open_dm(client, alice, bob)
    await tab.goto(f"{api(client)}/healthz")
    signed_in = await tab.run(
        FETCH
        + f"""
        return await call('/api/auth/login', {{method: 'POST',
          headers: {{'Content-Type': 'application/json'}},
          body: JSON.stringify({{login: 'alice', password: '{alice.password}'}})}});
        """
    )
    assert signed_in["status"] == 200
    assert len(session_cookies(await tab.cookies())) == 1
    async with page_server(page_port):
        await tab.goto(f"http://127.0.0.1:{page_port}/attacker")
        await tab.run(
            FETCH
            + f"""
            const simple = (body) => ({{method: 'POST', mode: 'no-cors', credentials: 'include',
              headers: {{'Content-Type': 'text/plain'}}, body}});
            await call('{api(client)}/api/conversations/{conversation}/messages',
                       simple(JSON.stringify({{content: 'forged with her cookie'}})));
            await call('{api(client)}/api/users/bob/follow', simple(''));
            """
        )
    listed = await messages(client, alice, conversation)
    assert "forged with her cookie" not in [m["content"] for m in listed["items"]]
    following = await client.get("/api/users/alice/following", headers=alice.auth)
    assert (await following.json())["items"] == []


async def test_same_origin_page_works_with_the_session_cookie(client, tab: Tab, alice, bob):
    """A web page served from the API's own origin signs in and posts with the cookie alone."""
    conversation = await open_dm(client, alice, bob)
    await tab.goto(f"{api(client)}/healthz")
    result = await tab.run(
        FETCH
        + f"""
        const json = (body) => ({{method: 'POST', headers: {{'Content-Type': 'application/json'}},
                                 body: JSON.stringify(body)}});
        const login = await call('/api/auth/login',
                                 json({{login: 'alice', password: '{alice.password}'}}));
        const sent = await call('/api/conversations/{conversation}/messages',
                                json({{content: 'sent from the web app'}}));
        const plain = await call('/api/conversations/{conversation}/messages',
          {{method: 'POST', headers: {{'Content-Type': 'text/plain'}},
            body: JSON.stringify({{content: 'not json'}})}});
        return {{login: login.status, sent: sent.status, plain: plain.status,
                 plainType: plain.type}};
        """
    )
    assert result == {
        "login": 200,
        "sent": 201,
        "plain": 415,  # even same-origin: a JSON endpoint takes only JSON
        "plainType": "application/problem+json",
    }
    listed = await messages(client, alice, conversation)
    assert [m["content"] for m in listed["items"]] == ["sent from the web app"]


async def test_listed_cross_site_app_uses_bearer_and_a_stream_ticket(
    client, tab: Tab, page_port: int, alice, bob
):
    """http://webapp.test:<port> is listed: its CORS requests with the bearer token work, and it
    reads the SSE stream through a single-use ticket in the URL (no cookie, no header)."""
    conversation = await open_dm(client, alice, bob)
    async with page_server(page_port):
        await tab.goto(f"http://webapp.test:{page_port}/app")
        ready = await tab.run(
            FETCH
            + f"""
            const auth = {{'Authorization': 'Bearer {alice.token}'}};
            const listed = await call('{api(client)}/api/conversations', {{headers: auth}});
            const ticket = await call('{api(client)}/api/gateway/tickets',
                                      {{method: 'POST', headers: auth}});
            window.events = [];
            window.stream = new EventSource(
              '{api(client)}/api/gateway/sse?ticket=' + ticket.body.ticket);
            window.stream.onmessage = (e) => window.events.push(JSON.parse(e.data));
            await new Promise((ok, fail) => {{
              window.stream.onopen = ok; window.stream.onerror = fail; }});
            // Used once: the same ticket opens nothing the second time.
            const again = new EventSource(
              '{api(client)}/api/gateway/sse?ticket=' + ticket.body.ticket);
            const reused = await new Promise((ok) => {{
              again.onopen = () => ok('open'); again.onerror = () => ok('refused'); }});
            again.close();
            return {{listed: listed.status, ticket: ticket.status,
                     expires: ticket.body.expires_in, reused}};
            """
        )
        assert ready == {"listed": 200, "ticket": 201, "expires": 30, "reused": "refused"}
        resp = await client.post(
            f"/api/conversations/{conversation}/messages",
            json={"content": "hello over SSE"},
            headers=bob.auth,
        )
        assert resp.status == 201
        received = await tab.run(
            """
            for (let i = 0; i < 100; i++) {
              const found = window.events.find((e) => e.t === 'message.created');
              if (found) { window.stream.close(); return found.d.message.content; }
              await new Promise((ok) => setTimeout(ok, 50));
            }
            return null;
            """
        )
        assert received == "hello over SSE"


async def test_unlisted_cross_site_page_gets_nothing(client, tab: Tab, page_port: int, alice):
    """http://evil.test:<port> is not listed: even holding a token it cannot read an answer
    (the preflight is refused) and a simple-request login is refused before it runs."""
    async with page_server(page_port):
        await tab.goto(f"http://evil.test:{page_port}/page")
        result = await tab.run(
            FETCH
            + f"""
            const auth = {{'Authorization': 'Bearer {alice.token}'}};
            const read = await call('{api(client)}/api/conversations', {{headers: auth}});
            const ticket = await call('{api(client)}/api/gateway/tickets',
                                      {{method: 'POST', headers: auth}});
            const login = await call('{api(client)}/api/auth/login', {{method: 'POST',
              credentials: 'include', headers: {{'Content-Type': 'application/json'}},
              body: JSON.stringify({{login: 'alice', password: '{alice.password}'}})}});
            return {{read: 'error' in read, ticket: 'error' in ticket, login: 'error' in login}};
            """
        )
    assert result == {"read": True, "ticket": True, "login": True}
    assert session_cookies(await tab.cookies()) == []


async def test_expired_cursor_is_a_resync_event_an_event_source_can_see(
    client, tab: Tab, page_port: int, alice
):
    """EventSource cannot read a 410: the stream answers `event: resync` with the reason."""
    publish = client.server.app[CONTEXT].bus.publish_user
    async with page_server(page_port):
        await tab.goto(f"http://webapp.test:{page_port}/app")
        await publish([uuid.UUID(alice.id)], "test.n", {})
        result = await tab.run(
            f"""
            const r = await fetch('{api(client)}/api/gateway/tickets', {{method: 'POST',
              headers: {{'Authorization': 'Bearer {alice.token}'}}}});
            const {{ticket}} = await r.json();
            const stream = new EventSource(
              '{api(client)}/api/gateway/sse?after=7&ticket=' + ticket);
            return await new Promise((ok) => {{
              stream.addEventListener('resync', (e) => {{
                stream.close(); ok(JSON.parse(e.data)); }});
              stream.onerror = () => {{ stream.close(); ok('error without a reason'); }};
            }});
            """
        )
    assert result["code"] == "invalid_session"
    assert result["seq"] == 1
