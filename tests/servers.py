"""Real peers on loopback for delivery tests: an SMTP server (aiosmtpd) and an HTTP server that
stands for both the SMS gateway and organisations' webhook endpoints; a proxy in front of Prefect's
server that refuses as that server does when its SQLite database is locked."""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _Collector:
    def __init__(self, inbox: list[EmailMessage]) -> None:
        self.inbox = inbox

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.inbox.append(message_from_bytes(envelope.content, policy=policy.default))  # type: ignore[arg-type]
        return "250 OK"


class SmtpServer:
    """An SMTP server that can be stopped and started again on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.inbox: list[EmailMessage] = []
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(_Collector(self.inbox), hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.inbox if m["To"] == address]


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    raw: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.raw)


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def refuse(self) -> None:
        """503 with no body, as a server answers when it cannot take the request now."""
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()


class _LoopbackHttp:
    """Serves a handler class on 127.0.0.1:`port` from a thread of its own."""

    port: int
    _server: ThreadingHTTPServer

    def _serve(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@dataclass
class HttpSink(_LoopbackHttp):
    """Records every POST; `modes[path]` makes it answer "ok", "500" or "slow" (holds the answer until
    `released` is set: the client's timeout passes first, as with a gateway that hangs);
    `busy[path]` = n makes it answer the next n POSTs there 503 without recording them."""

    port: int = field(default_factory=free_port)
    requests: list[Request] = field(default_factory=list)
    modes: dict[str, str] = field(default_factory=dict)
    busy: dict[str, int] = field(default_factory=dict)
    released: threading.Event = field(default_factory=threading.Event)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def received(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    def start(self) -> None:
        sink = self

        class Handler(_Handler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                mode = sink.modes.get(self.path, "ok")
                if sink.busy.get(self.path, 0) > 0:
                    sink.busy[self.path] -= 1
                    self.refuse()
                    return
                if mode == "slow":
                    # A deadline, so a test that forgets to release cannot hang the run.
                    sink.released.wait(timeout=60)
                if mode == "500":
                    self.send_response(500)
                    self.end_headers()
                    return
                sink.requests.append(Request(self.path, dict(self.headers.items()), raw))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"status": "accepted"}')

        self._serve(Handler)

    def stop(self) -> None:
        self.released.set()  # held answers finish; closing the server waits for their threads
        super().stop()


@dataclass
class RefusingProxy(_LoopbackHttp):
    """Forwards HTTP to `target` (a base URL); answers 503 to the first `refuse` POSTs to `path`, as
    Prefect's server on SQLite does when its database is locked, and notes when each POST to `path`
    arrived (time.monotonic())."""

    target: str
    path: str
    refuse: int = 0
    port: int = field(default_factory=free_port)
    arrivals: list[float] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The proxy's counterpart of `target`."""
        target = httpx.URL(self.target)
        return str(target.copy_with(host="127.0.0.1", port=self.port))

    def start(self) -> None:
        proxy = self
        origin = httpx.URL(self.target).copy_with(path="/", query=None)

        class Handler(_Handler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.command == "POST" and self.path == proxy.path:
                    proxy.arrivals.append(time.monotonic())
                    if proxy.refuse > 0:
                        proxy.refuse -= 1
                        self.refuse()
                        return
                skip = {"host", "content-length", "connection", "accept-encoding"}
                headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
                answer = httpx.request(
                    self.command, str(origin.join(self.path)), headers=headers, content=raw, timeout=30
                )
                self.send_response(answer.status_code)
                for key, value in answer.headers.items():
                    if key.lower() not in {
                        "content-length",
                        "transfer-encoding",
                        "connection",
                        "content-encoding",
                    }:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _forward

        self._serve(Handler)
