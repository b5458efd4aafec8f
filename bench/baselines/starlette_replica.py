"""Baseline (c): a replica of the old WFS real-time server (Starlette on uvicorn, Redis pub/sub).

It keeps the old service's shape (WIRE.md, section 2): echo is a Starlette
``WebSocketEndpoint`` with ``encoding = "json"`` (each frame parsed, then sent back with
``send_json``); alerts are published into Redis pub/sub (``alert_<city_uuid>`` channels,
``{"message": ...}`` payloads, as the old Django ``app_alert`` command did), and the WebSocket
server reads them from ONE shared pub/sub connection, with ONE task per alert connection
forwarding them to its client.

What differs, so that it delivers: the old per-connection tasks each polled the shared pub/sub
connection once a second (``get_message(timeout=1.0)``), so a task could pop and drop another
city's alert, latency was up to a second, and the tasks were never cancelled. Here a single
reader task listens on the shared connection (``psubscribe alert_*``, blocking, no polling)
and hands each alert to the queue of every connection of its city; each connection's task
waits on its own queue, and is cancelled when the connection closes.

``GET /publish?city=U&message=M`` publishes into Redis (standing in for ``manage.py
app_alert``). Run: ``REDIS_URL=redis://127.0.0.1:PORT uvicorn starlette_replica:app``.
"""

import asyncio
import contextlib
import json
import os

import redis.asyncio as aioredis
from starlette.applications import Starlette
from starlette.endpoints import WebSocketEndpoint
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute

PREFIX = "alert_"
QUEUES: dict[str, set] = {}
STATE = {}


async def read_alerts(pubsub):
    async for item in pubsub.listen():
        if item["type"] != "pmessage":
            continue
        city = item["channel"].decode()[len(PREFIX):]
        text = item["data"].decode()
        for queue in list(QUEUES.get(city, ())):
            queue.put_nowait(text)


class Echo(WebSocketEndpoint):
    encoding = "json"

    async def on_receive(self, websocket, data):
        await websocket.send_json(data)


class Alert(WebSocketEndpoint):
    encoding = "json"

    async def on_connect(self, websocket):
        await websocket.accept()
        self.city = websocket.query_params.get("city_uuid", "")
        self.queue = asyncio.Queue()
        QUEUES.setdefault(self.city, set()).add(self.queue)
        self.task = asyncio.create_task(self.forward(websocket))

    async def forward(self, websocket):
        while True:
            text = await self.queue.get()
            await websocket.send_text(text)

    async def on_disconnect(self, websocket, close_code):
        self.task.cancel()
        queues = QUEUES.get(self.city, set())
        queues.discard(self.queue)
        if not queues:
            QUEUES.pop(self.city, None)


async def publish(request):
    city = request.query_params.get("city", "")
    message = request.query_params.get("message", "")
    await STATE["redis"].publish(PREFIX + city, json.dumps({"message": message}, ensure_ascii=False))
    return PlainTextResponse("ok\n")


@contextlib.asynccontextmanager
async def lifespan(app):
    client = aioredis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    pubsub = client.pubsub()
    await pubsub.psubscribe(PREFIX + "*")
    reader = asyncio.create_task(read_alerts(pubsub))
    STATE["redis"] = client
    yield
    reader.cancel()
    await pubsub.aclose()
    await client.aclose()


app = Starlette(
    routes=[
        WebSocketRoute("/ws/v1/echo", Echo),
        WebSocketRoute("/ws/v1/alert", Alert),
        Route("/publish", publish),
    ],
    lifespan=lifespan,
)
