"""The product server for the fan-out scenario: the real app (create_app), plus what only a
load test needs, added from outside the product code: a `loadtest:` topic anyone may subscribe
to, and a control socket through which the harness publishes on it via the bus.

    python -m loadtest.server --port 8181   (settings from the usual env / config)
"""

from __future__ import annotations

import argparse

import orjson
import uvloop
from aiohttp import WSMsgType, web

from server.app import create_app
from server.app_keys import CONTEXT
from server.config import load_settings
from server.logs import configure_logging
from server.ws.calls import topic_authorizer

TOPIC = "loadtest:fanout"


@topic_authorizer("loadtest")
async def _anyone(ctx, principal, entity_id: str) -> bool:
    return True


async def control(request: web.Request) -> web.WebSocketResponse:
    """Each text frame is one tick's data: published once on the topic through the bus."""
    ws = web.WebSocketResponse(compress=False)
    await ws.prepare(request)
    bus = request.app[CONTEXT].bus
    async for msg in ws:
        if msg.type is WSMsgType.TEXT:
            await bus.publish_topic(TOPIC, "loadtest.tick", orjson.loads(msg.data))
    return ws


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    settings = load_settings()
    configure_logging(settings.server.log_level)
    app = create_app(settings)
    app.router.add_get("/loadtest/control", control)
    web.run_app(
        app,
        host="127.0.0.1",
        port=args.port,
        print=None,
        access_log=None,
        backlog=2048,
        loop=uvloop.new_event_loop(),
    )


if __name__ == "__main__":
    main()
