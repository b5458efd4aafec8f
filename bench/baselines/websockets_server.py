"""Baseline (b): a plain Python `websockets` server with wfs's echo and alert addresses.

- ``/ws/v1/echo`` sends every message back as it came (no JSON parsing, like the ceiling).
- ``/ws/v1/alert?city_uuid=U`` subscribes to ``U`` (any string; no token check).
- ``GET /publish?city=U&message=M`` sends ``{"message":M}`` to every subscriber of ``U`` with
  ``websockets.broadcast`` (serialised once, written without waiting).

Usage: ``python websockets_server.py --port PORT`` (listens on 127.0.0.1 only).
"""

import argparse
import asyncio
import json
import logging
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import broadcast, serve

SUBSCRIBERS: dict[str, set] = {}


async def handler(connection):
    url = urlsplit(connection.request.path)
    if url.path == "/ws/v1/echo":
        async for message in connection:
            await connection.send(message)
    elif url.path == "/ws/v1/alert":
        city = parse_qs(url.query).get("city_uuid", [""])[0]
        subscribers = SUBSCRIBERS.setdefault(city, set())
        subscribers.add(connection)
        try:
            await connection.wait_closed()
        finally:
            subscribers.discard(connection)
            if not subscribers:
                SUBSCRIBERS.pop(city, None)
    else:
        await connection.close(1008, "unknown address")


def process_request(connection, request):
    url = urlsplit(request.path)
    if url.path != "/publish":
        return None
    query = parse_qs(url.query)
    city, message = query.get("city", [""])[0], query.get("message", [""])[0]
    frame = json.dumps({"message": message}, separators=(",", ":"), ensure_ascii=False)
    broadcast(SUBSCRIBERS.get(city, set()), frame)
    return connection.respond(HTTPStatus.OK, "ok\n")


async def main(port):
    async with serve(handler, "127.0.0.1", port, process_request=process_request, backlog=2048):
        print(f"listening on 127.0.0.1:{port}", flush=True)
        await asyncio.get_running_loop().create_future()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main(parser.parse_args().port))
