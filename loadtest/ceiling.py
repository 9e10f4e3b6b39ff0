"""The ceiling: a bare aiohttp broadcast endpoint (no auth, no protocol, no bus), started by
the harness in its own process. Clients connect to /ws; each text frame on /control is wrapped
in the same event envelope the gateway sends and written to every client with send_str.

    python -m loadtest.ceiling --port 8182
"""

from __future__ import annotations

import argparse

import orjson
import uvloop
from aiohttp import WSMsgType, web

CLIENTS: web.AppKey[set] = web.AppKey("clients", set)


async def clients_ws(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(compress=False)
    await ws.prepare(request)
    request.app[CLIENTS].add(ws)
    try:
        async for _ in ws:
            pass
    finally:
        request.app[CLIENTS].discard(ws)
    return ws


async def control(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(compress=False)
    await ws.prepare(request)
    clients = request.app[CLIENTS]
    async for msg in ws:
        if msg.type is WSMsgType.TEXT:
            frame = orjson.dumps(
                {
                    "op": "event",
                    "t": "loadtest.tick",
                    "topic": "loadtest:fanout",
                    "d": orjson.loads(msg.data),
                }
            ).decode()
            for client in list(clients):
                try:
                    await client.send_str(frame)
                except ConnectionError:
                    clients.discard(client)
    return ws


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "clients": len(request.app[CLIENTS])})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = web.Application()
    app[CLIENTS] = set()
    app.router.add_get("/ws", clients_ws)
    app.router.add_get("/control", control)
    app.router.add_get("/readyz", healthz)
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
