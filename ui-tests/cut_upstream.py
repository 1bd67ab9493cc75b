"""A tiny OpenAI-compatible upstream whose streamed answers break off.

Every `POST …/chat/completions` is answered with a stream that sends
`PARTIAL_TEXT` in two content events and then closes the connection without
`data: [DONE]`. Switchyard has committed to the answer by then, so it ends
the stream it sends the app with an `upstream_stream_interrupted` error
event, and the OpenAI SDK raises `APIError` in the middle of the stream:
the case where the app must show the partial answer plus the error.

Listens on 127.0.0.1 only, on a free port, in a daemon thread.
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PARTIAL_WORDS = ["Half an answer", " before the line went dead"]
PARTIAL_TEXT = "".join(PARTIAL_WORDS)


def _chunk(content: str, role: str | None = None) -> bytes:
    delta: dict[str, str] = {"content": content}
    if role:
        delta["role"] = role
    event = {
        "id": "chatcmpl-cut",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "cut",
        "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
    }
    return b"data: " + json.dumps(event).encode() + b"\n\n"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:  # `GET /v1/models`, should anyone ask
        body = json.dumps({"object": "list", "data": [{"id": "cut", "object": "model"}]}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        if not self.path.endswith("/chat/completions"):
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for frame in [_chunk("", role="assistant"), *(_chunk(w) for w in PARTIAL_WORDS)]:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(frame), frame))
            self.wfile.flush()
        # No terminating chunk, no finish_reason, no [DONE]: the body is
        # incomplete, as when an upstream dies mid-answer.
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)


class CutUpstream:
    def __init__(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       name="cut-upstream", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def start(self) -> "CutUpstream":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
