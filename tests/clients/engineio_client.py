"""An independent engine.io client (python-engineio, polling only) against `rtsim serve`, for
tests/serve_engine_io.rs: `watch BASE SECONDS` connects, reads messages for up to SECONDS (answering
the server's pings as the library does) and prints one JSON line with what it saw — the session id,
the welcome, how many events arrived, a message it sent, and whether and why the session ended
(the library's own warnings, e.g. an unexpected status code, are collected verbatim).
"""

import importlib.metadata
import json
import logging
import sys
import threading

import engineio


class Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def watch(base, seconds):
    logger = logging.getLogger("engineio-under-test")
    logger.setLevel(logging.WARNING)
    logger.propagate = False
    warnings = Collect()
    logger.addHandler(warnings)
    client = engineio.Client(logger=logger)
    seen = {"welcome": None, "events": 0, "last_id": None}
    ended = threading.Event()
    reasons = []

    @client.on("message")
    def on_message(data):
        message = data if isinstance(data, dict) else json.loads(data)
        if message.get("type") == "welcome":
            seen["welcome"] = message
        elif "id" in message:
            seen["events"] += 1
            seen["last_id"] = message["id"]

    @client.on("disconnect")
    def on_disconnect(*args):
        reasons.append(str(args[0]) if args else "")
        ended.set()

    client.connect(f"http://{base}", transports=["polling"], engineio_path="socket.io")
    sid = client.sid
    client.send(json.dumps({"sent_us": 1, "text": "from python-engineio"}))
    ended.wait(seconds)
    disconnected = ended.is_set()
    if not disconnected:
        client.disconnect()
    print(json.dumps({
        "engineio": importlib.metadata.version("python-engineio"),
        "sid": sid,
        "ping_interval": client.ping_interval,
        "welcome": seen["welcome"],
        "events": seen["events"],
        "last_id": seen["last_id"],
        "disconnected": disconnected,
        "reasons": reasons,
        "warnings": warnings.lines,
    }), flush=True)


def main():
    command, base, *rest = sys.argv[1:]
    if command == "watch":
        watch(base, float(rest[0]))
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main()
