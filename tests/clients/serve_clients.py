"""Independent clients of `rtsim serve` for tests/serve_clients.rs: Python's `websockets` (a WebSocket
library) and `httpx` + `httpx-sse` (an HTTP client and an SSE parser), none written for rtsim.

Each subcommand prints one JSON line with what it observed; the Rust test decides what is right.
`watch-*` subcommands print {"ready": last_id} once they have events, then keep reading until the
server ends the session, and print how it ended.
"""

import asyncio
import json
import sys

import httpx
import httpx_sse
import websockets
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus


def out(value):
    print(json.dumps(value), flush=True)


async def ws_watch(base):
    async with connect(f"ws://{base}/ws") as ws:
        last = None
        count = 0
        try:
            while True:
                data = json.loads(await ws.recv())
                if "id" in data:
                    last = data["id"]
                    count += 1
                    if count == 3:
                        out({"ready": last})
        except ConnectionClosed as closed:
            out({
                "last_id": last,
                "code": closed.rcvd.code if closed.rcvd else None,
                "clean": closed.rcvd is not None and closed.sent is not None,
            })


async def ws_resume(base, last_id):
    async with connect(f"ws://{base}/ws?last_event_id={last_id}") as ws:
        first = json.loads(await ws.recv())
        welcome = json.loads(await ws.recv())
        event = json.loads(await ws.recv())
        await ws.close()
        out({"first": first, "welcome": welcome, "event_id": event.get("id"), "close_code": ws.close_code})


async def ws_checks(base):
    result = {"websockets": websockets.__version__}
    # A close we start is answered: the server's Close frame arrives and echoes 1000.
    async with connect(f"ws://{base}/ws") as ws:
        await ws.recv()
        await ws.close()
        result["client_close"] = {"code": ws.close_code, "answered": ws.protocol.close_rcvd is not None}
    # A message over the server's limit: closed with 1009.
    async with connect(f"ws://{base}/ws", max_size=None) as ws:
        await ws.recv()
        await ws.send("x" * 70_000)
        try:
            while True:
                await ws.recv()
        except ConnectionClosed as closed:
            result["too_big"] = closed.rcvd.code if closed.rcvd else None
    # A page from another origin may not open a session; its own origin may.
    try:
        async with connect(f"ws://{base}/ws", origin="https://evil.example"):
            result["foreign_origin"] = 101
    except InvalidStatus as refused:
        result["foreign_origin"] = refused.response.status_code
    async with connect(f"ws://{base}/ws", origin=f"http://{base}") as ws:
        result["own_origin"] = json.loads(await ws.recv())["type"]
    out(result)


def sse_watch(base):
    last = None
    count = 0
    try:
        with httpx.Client(timeout=httpx.Timeout(10.0)) as client:
            with httpx_sse.connect_sse(client, "GET", f"http://{base}/events") as source:
                for event in source.iter_sse():
                    if event.event == "message":
                        last = int(event.id)
                        count += 1
                        if count == 3:
                            out({"ready": last})
        out({"last_id": last, "clean": True})
    except httpx.HTTPError as broken:
        out({"last_id": last, "clean": False, "error": repr(broken)})


def sse_resume(base, last_id):
    events = []
    with httpx.Client(timeout=httpx.Timeout(10.0)) as client:
        headers = {"Last-Event-ID": str(last_id)}
        with httpx_sse.connect_sse(client, "GET", f"http://{base}/events", headers=headers) as source:
            for event in source.iter_sse():
                if not event.data:
                    # httpx-sse yields the opening `id:`-only block; a browser dispatches nothing
                    # for an event without data (WHATWG HTML, "dispatch the event", step 2).
                    continue
                events.append({"event": event.event, "id": event.id, "data": event.data})
                if sum(e["event"] == "message" for e in events) >= 2:
                    break
    out({"events": events})


def http_checks(base):
    result = {"httpx": httpx.__version__}
    with httpx.Client(timeout=httpx.Timeout(10.0)) as client:
        big = json.dumps({"sent_us": 1, "text": "x" * 70_000})
        result["too_big"] = client.post(f"http://{base}/messages", content=big).status_code
        result["small"] = client.post(f"http://{base}/messages", content='{"sent_us":1}').status_code
        preflight = client.options(
            f"http://{base}/messages",
            headers={
                "Origin": "https://app.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        result["preflight"] = {"status": preflight.status_code, "headers": dict(preflight.headers)}
        answer = client.get(f"http://{base}/poll", headers={"Origin": "https://app.example"})
        result["cors_get"] = {"status": answer.status_code, "headers": dict(answer.headers)}
        result["foreign"] = client.get(
            f"http://{base}/poll", headers={"Origin": "https://evil.example"}
        ).status_code
    # SSE from an allowed origin, through httpx-sse.
    with httpx.Client(timeout=httpx.Timeout(10.0)) as client:
        headers = {"Origin": "https://app.example"}
        with httpx_sse.connect_sse(client, "GET", f"http://{base}/events", headers=headers) as source:
            result["sse_cors"] = source.response.headers.get("access-control-allow-origin")
            for event in source.iter_sse():
                if event.event == "message":
                    result["sse_event_id"] = int(event.id)
                    break
    out(result)


def main():
    command, base, *rest = sys.argv[1:]
    if command == "ws-watch":
        asyncio.run(ws_watch(base))
    elif command == "ws-resume":
        asyncio.run(ws_resume(base, int(rest[0])))
    elif command == "ws-checks":
        asyncio.run(ws_checks(base))
    elif command == "sse-watch":
        sse_watch(base)
    elif command == "sse-resume":
        sse_resume(base, int(rest[0]))
    elif command == "http-checks":
        http_checks(base)
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main()
