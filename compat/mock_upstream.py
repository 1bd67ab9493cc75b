"""A small OpenAI-compatible upstream for the compatibility suite.

Pure standard library: a ``ThreadingHTTPServer`` on ``127.0.0.1`` (port 0),
run in a daemon thread by the ``upstream`` fixture in ``conftest.py``.

Endpoints, all under ``/v1``:

- ``POST /v1/chat/completions``: plain and SSE-streamed answers. Streams end
  with ``data: [DONE]``; with ``stream_options.include_usage`` the chunk
  before it has ``"choices": []`` and the usage. With ``tools`` in the
  request it calls the first tool with ``{"city":"Oslo"}`` (streamed as
  OpenAI streams tool-call deltas); once the messages hold a ``role: tool``
  message it answers with text quoting that tool result.
  ``response_format`` ``json_object`` / ``json_schema`` makes the content a
  JSON document (for ``json_schema``, one that fits the schema's properties).
- ``POST /v1/responses``: a one-message Responses API answer, or its SSE
  stream of named events (``response.created`` … ``response.completed``).
- ``POST /v1/embeddings``: fixed vectors (:data:`EMBEDDING`), as floats or as
  base64 little-endian float32, whichever ``encoding_format`` asks for.
- ``GET /v1/models``.
- ``POST /v1/messages``: Anthropic's Messages API (PROTOCOLS.md 7.1-7.5),
  as its documentation shows it, for ``provider: anthropic`` upstreams.
  It refuses what the real API refuses (no ``x-api-key``: 401; no
  ``anthropic-version``, no ``max_tokens``, a ``system`` role among the
  messages, a field it does not know, ``temperature`` above 1, ``tool_use``
  and ``tool_result`` blocks that do not pair up, ...: 400
  ``invalid_request_error``, in Anthropic's error envelope). It answers
  like the chat handler: the same echo text (cut at a ``stop_sequences``
  match, or after ``max_tokens`` words), a ``tool_use`` block whose
  ``input`` fits the tool's ``input_schema`` when ``tools`` are given and
  ``tool_choice`` is not ``none`` (the first tool, or the one named; with
  ``auto`` a short text block comes first, as Claude does), and "The tool
  said: ..." once the last user turn holds a ``tool_result``. Usage always
  reports :data:`CACHE_CREATION_INPUT_TOKENS` and
  :data:`CACHE_READ_INPUT_TOKENS` on top of ``input_tokens`` (see
  :func:`messages_input_tokens`). ``stream: true`` gives the documented
  event sequence (``message_start``, ``ping``, ``content_block_start`` /
  ``content_block_delta`` / ``content_block_stop`` per block,
  ``message_delta``, ``message_stop``), every event named by an ``event:``
  line. Responses carry Anthropic's ``request-id`` header.

Model names that fail on purpose, with OpenAI's error bodies
(:data:`FAILURES` holds the exact bytes, so tests can compare what the
client received):

- ``fail-429``: 429 ``rate_limit_exceeded`` with ``retry-after: 0``.
- ``fail-500``: 500 ``server_error``.
- ``fail-400``: 400 ``invalid_request_error``.
- ``slow``: answers only after :data:`SLOW_S` seconds (or when the server
  stops), to trip the router's `first_byte` timeout.
- ``cut-stream``: a chat stream whose connection drops after two content
  chunks, between events; ``cut-mid-event``: the same, but the connection
  drops in the middle of an event.

and on ``/v1/messages``, in Anthropic's shapes:

- :data:`ANTHROPIC_OVERLOADED` (``claude-overloaded-529``): 529
  ``overloaded_error``.
- :data:`ANTHROPIC_ERROR_MID_STREAM` (``claude-error-mid-stream``): a stream
  that sends an ``error`` event (``overloaded_error``) right after its first
  text delta, then ends; answered normally when not streamed.

Every request is recorded (:class:`Received`) and counted per model, so
tests can check what the router forwarded and how often the SDK retried.
"""

from __future__ import annotations

import base64
import itertools
import json
import socket
import struct
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: The vector every embedding gets; exactly representable in float32, so a
#: base64 round trip must give these numbers back unchanged.
EMBEDDING = [0.5, -0.25, 1.0, 0.125, -2.0, 0.0, 3.5, -0.0625]

#: The tool-call arguments the mock always produces.
TOOL_ARGUMENTS = '{"city":"Oslo"}'

#: How long the `slow` model waits before it answers.
SLOW_S = 5.0

#: `x-request-id` prefix the mock puts on its own responses.
UPSTREAM_REQUEST_ID_PREFIX = "req_mockupstream_"


#: Anthropic's side: the model `/v1/messages` answers normally, and the two
#: that fail on purpose (see the module docstring).
ANTHROPIC_MODEL = "claude-mock-sonnet"
ANTHROPIC_OVERLOADED = "claude-overloaded-529"
ANTHROPIC_ERROR_MID_STREAM = "claude-error-mid-stream"
#: What every Messages answer reports besides `input_tokens` (which excludes them).
CACHE_CREATION_INPUT_TOKENS = 4
CACHE_READ_INPUT_TOKENS = 3
#: The text block before a `tool_use` block when `tool_choice` is `auto`.
TOOL_PREAMBLE = "Let me look that up."
#: The top-level fields the Messages API takes; any other is refused
#: ("Extra inputs are not permitted"), as the real API does.
MESSAGES_FIELDS = frozenset({
    "model", "messages", "max_tokens", "system", "metadata", "stop_sequences", "stream",
    "temperature", "top_p", "top_k", "tools", "tool_choice", "thinking", "service_tier",
    "container", "mcp_servers", "context_management",
})


def _error_body(message: str, type_: str, param: str | None, code: str | None) -> bytes:
    return json.dumps(
        {"error": {"message": message, "type": type_, "param": param, "code": code}},
        separators=(",", ":"),
    ).encode()


#: model name -> (status, extra headers, exact body bytes).
FAILURES: dict[str, tuple[int, dict[str, str], bytes]] = {
    "fail-429": (
        429,
        {"retry-after": "0"},
        _error_body(
            "Rate limit reached for fail-429 in organization org-mock on requests per min (RPM): "
            "Limit 3, Used 3, Requested 1. Please try again in 20s.",
            "requests",
            None,
            "rate_limit_exceeded",
        ),
    ),
    "fail-500": (
        500,
        {},
        _error_body(
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
            None,
            None,
        ),
    ),
    "fail-400": (
        400,
        {},
        _error_body(
            "Invalid value for 'temperature': the mock upstream rejects every request to fail-400.",
            "invalid_request_error",
            "temperature",
            "invalid_value",
        ),
    ),
}


@dataclass
class Received:
    """One request as the mock received it."""

    method: str
    path: str
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    raw_body: bytes
    body: Any = None  # parsed JSON, or None when the body is not JSON


@dataclass
class _Log:
    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: list[Received] = field(default_factory=list)
    per_model: dict[str, int] = field(default_factory=dict)


class MockUpstream:
    """The server plus what it has seen. Use :meth:`start` / :meth:`stop`."""

    def __init__(self) -> None:
        self._log = _Log()
        self.stopping = threading.Event()
        self._ids = itertools.count(1)
        handler = type("BoundHandler", (_Handler,), {"mock": self})
        self._server = _Server(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="mock-upstream", daemon=True
        )

    # -- lifecycle --------------------------------------------------------

    def start(self) -> "MockUpstream":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        """What an OpenAI client (or a Switchyard upstream) takes as `base_url`."""
        return f"http://127.0.0.1:{self.port}/v1"

    # -- records ----------------------------------------------------------

    def reset(self) -> None:
        with self._log.lock:
            self._log.requests.clear()
            self._log.per_model.clear()

    @property
    def requests(self) -> list[Received]:
        with self._log.lock:
            return list(self._log.requests)

    def count(self, model: str) -> int:
        """How many requests named `model` (as the upstream model name)."""
        with self._log.lock:
            return self._log.per_model.get(model, 0)

    def last(self, path_suffix: str = "") -> Received:
        """The most recent request whose path ends with `path_suffix`."""
        for received in reversed(self.requests):
            if received.path.endswith(path_suffix):
                return received
        raise AssertionError(f"the mock upstream received no request for {path_suffix!r}")

    def _record(self, received: Received) -> None:
        model = received.body.get("model") if isinstance(received.body, dict) else None
        with self._log.lock:
            self._log.requests.append(received)
            if isinstance(model, str):
                self._log.per_model[model] = self._log.per_model.get(model, 0) + 1

    def next_id(self) -> int:
        return next(self._ids)


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up (the router after a timeout, or on a cut
        # stream) is part of the tests, not an error worth a traceback.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    mock: MockUpstream  # set on the per-server subclass
    protocol_version = "HTTP/1.1"  # keep-alive and chunked streams, like OpenAI
    server_version = "mock-upstream/1"
    # Headers and body go out in separate writes; without TCP_NODELAY, Nagle
    # plus delayed ACKs would add ~40 ms to every answer.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
        pass  # quiet; the records are the log

    # -- plumbing ---------------------------------------------------------

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                size_line = self.rfile.readline()
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    # Trailers (none expected) end with an empty line.
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline()  # CRLF after each chunk
            return b"".join(parts)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _receive(self) -> Received:
        raw = self._read_body() if self.command == "POST" else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        received = Received(self.command, self.path, headers, raw, body)
        self.mock._record(received)
        return received

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None,
              content_type: str = "application/json",
              request_id_header: str = "x-request-id") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header(request_id_header, f"{UPSTREAM_REQUEST_ID_PREFIX}{self.mock.next_id()}")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def _send_json(self, status: int, value: Any) -> None:
        self._send(status, json.dumps(value).encode())

    def _send_sse(self, events: list[Any], *, cut_after: int | None = None,
                  mid_event: bool = False, named: bool = False,
                  request_id_header: str = "x-request-id") -> None:
        """Streams `events` (JSON values) as OpenAI does, then `[DONE]`.

        `cut_after`: drop the connection after that many events instead
        (`mid_event`: after half of the next event too), with no final chunk.
        `named`: Responses- and Anthropic-style frames with an `event:` line
        and no `[DONE]`.
        """
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header(request_id_header, f"{UPSTREAM_REQUEST_ID_PREFIX}{self.mock.next_id()}")
        self.end_headers()
        frames = []
        for e in events:
            data = json.dumps(e, separators=(",", ":"))
            event = f"event: {e['type']}\n" if named else ""
            frames.append(f"{event}data: {data}\n\n".encode())
        if not named:
            frames.append(b"data: [DONE]\n\n")
        if cut_after is not None:
            partial = frames[cut_after][: len(frames[cut_after]) // 2] if mid_event else b""
            frames = frames[:cut_after] + ([partial] if partial else [])
        for frame in frames:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(frame), frame))
            self.wfile.flush()
        if cut_after is not None:
            # No terminating chunk: the body is incomplete, as when an
            # upstream dies mid-answer. Close the socket under the client.
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    # -- routes -----------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        self._receive()
        if self.path.rstrip("/") == "/v1/models":
            now = int(time.time())
            data = [
                {"id": name, "object": "model", "created": now, "owned_by": "mock-upstream"}
                for name in ["upstream-gpt", "upstream-embed", *FAILURES]
            ]
            self._send_json(200, {"object": "list", "data": data})
        else:
            self._not_found()

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        received = self._receive()
        request = received.body
        if not isinstance(request, dict) and self.path != "/v1/messages":
            self._send(400, _error_body(
                "We could not parse the JSON body of your request.",
                "invalid_request_error", None, None))
            return
        if self.path == "/v1/messages":
            self._messages(received)  # Anthropic: its own checks and failures
            return
        model = request.get("model")
        if model == "slow":
            self.mock.stopping.wait(SLOW_S)
        if model in FAILURES:
            status, headers, body = FAILURES[model]
            self._send(status, body, headers)
            return
        if self.path == "/v1/chat/completions":
            self._chat(request)
        elif self.path == "/v1/responses":
            self._responses(request)
        elif self.path == "/v1/embeddings":
            self._embeddings(request)
        else:
            self._not_found()

    def _not_found(self) -> None:
        self._send(404, _error_body(
            f"Invalid URL ({self.command} {self.path})", "invalid_request_error", None, None))

    # -- chat -------------------------------------------------------------

    def _chat(self, request: dict[str, Any]) -> None:
        model = request.get("model", "")
        messages = request.get("messages") or []
        stream = request.get("stream") is True
        include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
        cid = f"chatcmpl-mock{self.mock.next_id()}"
        created = int(time.time())

        tool_message = next((m for m in reversed(messages) if m.get("role") == "tool"), None)
        tools = request.get("tools") or []
        tool_call = None
        if tool_message is not None:
            content = f"The tool said: {_text(tool_message.get('content'))}"
        elif tools:
            name = tools[0].get("function", {}).get("name", "tool")
            tool_call = {"id": f"call_mock{self.mock.next_id()}", "name": name}
            content = None
        else:
            content = _answer_text(request, messages)

        prompt_tokens = sum(len(_text(m.get("content")).split()) for m in messages) + 1
        completion_tokens = len((content or TOOL_ARGUMENTS).split())
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        finish = "tool_calls" if tool_call else "stop"

        if not stream:
            message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
            if tool_call:
                message["tool_calls"] = [{
                    "id": tool_call["id"], "type": "function",
                    "function": {"name": tool_call["name"], "arguments": TOOL_ARGUMENTS},
                }]
            self._send_json(200, {
                "id": cid, "object": "chat.completion", "created": created, "model": model,
                "choices": [{"index": 0, "message": message, "logprobs": None,
                             "finish_reason": finish}],
                "usage": usage, "system_fingerprint": "fp_mock",
            })
            return

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            c: dict[str, Any] = {
                "id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                "system_fingerprint": "fp_mock",
                "choices": [{"index": 0, "delta": delta, "logprobs": None,
                             "finish_reason": finish_reason}],
            }
            if include_usage:
                c["usage"] = None
            return c

        events: list[Any] = []
        if tool_call:
            events.append(chunk({"role": "assistant", "content": None, "tool_calls": [{
                "index": 0, "id": tool_call["id"], "type": "function",
                "function": {"name": tool_call["name"], "arguments": ""}}]}))
            for piece in _split_arguments(TOOL_ARGUMENTS):
                events.append(chunk({"tool_calls": [{"index": 0,
                                                     "function": {"arguments": piece}}]}))
        else:
            events.append(chunk({"role": "assistant", "content": "", "refusal": None}))
            for piece in _pieces(content or ""):
                events.append(chunk({"content": piece}))
        events.append(chunk({}, finish))
        if include_usage:
            events.append({
                "id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                "system_fingerprint": "fp_mock", "choices": [], "usage": usage,
            })
        if model in ("cut-stream", "cut-mid-event"):
            # role chunk + two content chunks, then the connection drops.
            self._send_sse(events, cut_after=3, mid_event=model == "cut-mid-event")
        else:
            self._send_sse(events)

    # -- responses --------------------------------------------------------

    def _responses(self, request: dict[str, Any]) -> None:
        model = request.get("model", "")
        given = request.get("input")
        if isinstance(given, list):
            given = " ".join(_text(item.get("content")) for item in given
                             if isinstance(item, dict) and item.get("role") == "user")
        text = f"Hello from the mock upstream! You said: {given}"
        n = self.mock.next_id()
        rid, mid = f"resp_mock{n}", f"msg_mock{n}"
        input_tokens = len(str(given).split())
        output_tokens = len(text.split())
        usage = {
            "input_tokens": input_tokens, "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": output_tokens, "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_tokens + output_tokens,
        }
        part = {"type": "output_text", "text": text, "annotations": []}
        item = {"type": "message", "id": mid, "status": "completed", "role": "assistant",
                "content": [part]}

        def response(status: str, output: list[Any], usage: Any) -> dict[str, Any]:
            return {
                "id": rid, "object": "response", "created_at": int(time.time()),
                "status": status, "model": model, "output": output, "usage": usage,
                "error": None, "incomplete_details": None, "instructions": None,
                "metadata": {}, "parallel_tool_calls": True, "temperature": 1.0,
                "tool_choice": "auto", "tools": [], "top_p": 1.0,
            }

        if request.get("stream") is not True:
            self._send_json(200, response("completed", [item], usage))
            return
        where = {"item_id": mid, "output_index": 0, "content_index": 0}
        events: list[dict[str, Any]] = [
            {"type": "response.created", "response": response("in_progress", [], None)},
            {"type": "response.in_progress", "response": response("in_progress", [], None)},
            {"type": "response.output_item.added", "output_index": 0,
             "item": {**item, "status": "in_progress", "content": []}},
            {"type": "response.content_part.added", **where,
             "part": {"type": "output_text", "text": "", "annotations": []}},
            *({"type": "response.output_text.delta", **where, "delta": piece, "logprobs": []}
              for piece in _pieces(text)),
            {"type": "response.output_text.done", **where, "text": text, "logprobs": []},
            {"type": "response.content_part.done", **where, "part": part},
            {"type": "response.output_item.done", "output_index": 0, "item": item},
            {"type": "response.completed", "response": response("completed", [item], usage)},
        ]
        for number, event in enumerate(events):
            event["sequence_number"] = number
        self._send_sse(events, named=True)

    # -- embeddings -------------------------------------------------------

    def _embeddings(self, request: dict[str, Any]) -> None:
        inputs = request.get("input")
        items = inputs if isinstance(inputs, list) else [inputs]
        as_base64 = request.get("encoding_format") == "base64"
        packed = base64.b64encode(struct.pack(f"<{len(EMBEDDING)}f", *EMBEDDING)).decode()
        data = [
            {"object": "embedding", "index": i,
             "embedding": packed if as_base64 else list(EMBEDDING)}
            for i, _ in enumerate(items)
        ]
        tokens = sum(len(str(item).split()) for item in items)
        self._send_json(200, {
            "object": "list", "data": data, "model": request.get("model"),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        })

    # -- Anthropic messages -----------------------------------------------

    def _anthropic_error(self, status: int, type_: str, message: str) -> None:
        """An error in Anthropic's envelope, with its `request-id` header."""
        body = {"type": "error", "error": {"type": type_, "message": message},
                "request_id": f"req_mock{self.mock.next_id()}"}
        self._send(status, json.dumps(body).encode(), request_id_header="request-id")

    def _messages(self, received: Received) -> None:
        """`POST /v1/messages`, checked and answered as Anthropic does."""
        if not received.headers.get("x-api-key"):
            self._anthropic_error(401, "authentication_error", "x-api-key header is required")
            return
        if not received.headers.get("anthropic-version"):
            self._anthropic_error(400, "invalid_request_error",
                                  "anthropic-version: header is required")
            return
        request = received.body
        if not isinstance(request, dict):
            self._anthropic_error(400, "invalid_request_error",
                                  "There was an error parsing the body of your request: "
                                  "it must be a JSON object.")
            return
        problem = _messages_problem(request)
        if problem is not None:
            self._anthropic_error(400, "invalid_request_error", problem)
            return
        model = request["model"]
        if model == ANTHROPIC_OVERLOADED:
            self._anthropic_error(529, "overloaded_error", "Overloaded")
            return

        messages = request["messages"]
        last = messages[-1]
        results = [b for b in _blocks(last.get("content"))
                   if last["role"] == "user" and b.get("type") == "tool_result"]
        tools = request.get("tools") or []
        choice = request.get("tool_choice") or {"type": "auto"}
        text, tool_use = "", None
        stop_reason, stop_sequence = "end_turn", None
        if results:
            text = f"The tool said: {_text(results[-1].get('content'))}"
        elif tools and choice["type"] != "none":
            tool = (next(t for t in tools if t["name"] == choice["name"])
                    if choice["type"] == "tool" else tools[0])
            tool_use = {"type": "tool_use", "id": f"toolu_mock{self.mock.next_id()}",
                        "name": tool["name"], "input": _fit(tool["input_schema"])}
            text = TOOL_PREAMBLE if choice["type"] == "auto" else ""
            stop_reason = "tool_use"
        else:
            text = _answer_text(request, messages)
        if tool_use is None:
            hits = [(text.find(seq), seq) for seq in request.get("stop_sequences") or []
                    if seq and seq in text]
            if hits:
                at, stop_sequence = min(hits)
                text, stop_reason = text[:at], "stop_sequence"
            words = text.split(" ")
            if len(words) > request["max_tokens"]:
                text, stop_reason, stop_sequence = (
                    " ".join(words[: request["max_tokens"]]), "max_tokens", None)

        content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
        if tool_use is not None:
            content.append(tool_use)
        input_tokens = messages_input_tokens(request)
        output_tokens = len(text.split()) + (
            len(json.dumps(tool_use["input"]).split()) if tool_use else 0)
        usage = {"input_tokens": input_tokens,
                 "cache_creation_input_tokens": CACHE_CREATION_INPUT_TOKENS,
                 "cache_read_input_tokens": CACHE_READ_INPUT_TOKENS,
                 "output_tokens": output_tokens, "service_tier": "standard"}
        message = {"id": f"msg_mock{self.mock.next_id()}", "type": "message",
                   "role": "assistant", "model": model, "content": content,
                   "stop_reason": stop_reason, "stop_sequence": stop_sequence, "usage": usage}

        if request.get("stream") is not True:
            self._send(200, json.dumps(message).encode(), request_id_header="request-id")
            return
        events: list[dict[str, Any]] = [
            {"type": "message_start", "message": {
                **message, "content": [], "stop_reason": None, "stop_sequence": None,
                "usage": {**usage, "output_tokens": 1}}},
            {"type": "ping"},
        ]
        for index, block in enumerate(content):
            if block["type"] == "text":
                events.append({"type": "content_block_start", "index": index,
                               "content_block": {"type": "text", "text": ""}})
                events.extend({"type": "content_block_delta", "index": index,
                               "delta": {"type": "text_delta", "text": piece}}
                              for piece in _pieces(block["text"]))
            else:
                events.append({"type": "content_block_start", "index": index,
                               "content_block": {**block, "input": {}}})
                # Anthropic starts with an empty fragment, then cuts anywhere.
                events.extend({"type": "content_block_delta", "index": index,
                               "delta": {"type": "input_json_delta", "partial_json": piece}}
                              for piece in ["", *_json_fragments(json.dumps(block["input"]))])
            events.append({"type": "content_block_stop", "index": index})
        events.append({"type": "message_delta",
                       "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
                       "usage": {"output_tokens": output_tokens}})
        events.append({"type": "message_stop"})
        if model == ANTHROPIC_ERROR_MID_STREAM:
            first_delta = next(i for i, e in enumerate(events)
                               if e["type"] == "content_block_delta")
            events = events[: first_delta + 1] + [{"type": "error", "error": {
                "type": "overloaded_error", "message": "Overloaded"}}]
        self._send_sse(events, named=True, request_id_header="request-id")


def _blocks(content: Any) -> list[dict[str, Any]]:
    """An Anthropic message `content` as blocks (a string is one text block)."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


def messages_input_tokens(request: dict[str, Any]) -> int:
    """The `input_tokens` the mock reports for a Messages request: words of
    the system prompt and of every block (tool inputs as JSON), plus one."""
    words = len(_text(request.get("system")).split())
    for m in request.get("messages") or []:
        for block in _blocks(m.get("content")):
            if block.get("type") == "tool_use":
                words += len(json.dumps(block.get("input")).split())
            elif block.get("type") == "tool_result":
                words += len(_text(block.get("content")).split())
            else:
                words += len(str(block.get("text", "")).split())
    return words + 1


#: Content block types the Messages API takes in a request, and who may send them.
_USER_BLOCKS = {"text", "image", "document", "tool_result", "search_result"}
_IMAGE_TYPES = {"image/jpeg", "image/png", "image/gif", "image/webp"}
_ASSISTANT_BLOCKS = {"text", "tool_use", "thinking", "redacted_thinking", "server_tool_use",
                     "web_search_tool_result"}


def _messages_problem(request: dict[str, Any]) -> str | None:
    """Why the real Messages API would answer this request 400, or None."""
    for name in request:
        if name not in MESSAGES_FIELDS:
            return f"{name}: Extra inputs are not permitted"
    for name in ("model", "messages", "max_tokens"):
        if name not in request:
            return f"{name}: Field required"
    if not isinstance(request["model"], str) or not request["model"]:
        return "model: Input should be a valid string"
    max_tokens = request["max_tokens"]
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        return "max_tokens: Input should be an integer greater than or equal to 1"
    if "stream" in request and not isinstance(request["stream"], bool):
        return "stream: Input should be a valid boolean"
    for name in ("temperature", "top_p"):
        value = request.get(name)
        if value is not None and (not isinstance(value, (int, float)) or not 0 <= value <= 1):
            return f"{name}: Input should be less than or equal to 1"
    system = request.get("system")
    if system is not None and not isinstance(system, str) and not (
            isinstance(system, list)
            and all(isinstance(b, dict) and b.get("type") == "text" for b in system)):
        return "system: Input should be a valid string or a list of text blocks"
    stops = request.get("stop_sequences")
    if stops is not None and not (isinstance(stops, list)
                                  and all(isinstance(x, str) for x in stops)):
        return "stop_sequences: Input should be a valid list of strings"
    metadata = request.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            return "metadata: Input should be a valid dictionary"
        for name in metadata:
            if name != "user_id":
                return f"metadata.{name}: Extra inputs are not permitted"

    tools = request.get("tools")
    names: list[str] = []
    if tools is not None:
        if not isinstance(tools, list):
            return "tools: Input should be a valid list"
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
                return f"tools.{i}.name: Field required"
            schema = tool.get("input_schema")
            if not isinstance(schema, dict):
                return f"tools.{i}.input_schema: Field required"
            if schema.get("type") != "object":
                return f"tools.{i}.input_schema.type: Input should be 'object'"
            for name in tool:
                if name not in ("name", "description", "input_schema", "cache_control", "type"):
                    return f"tools.{i}.{name}: Extra inputs are not permitted"
            names.append(tool["name"])
    choice = request.get("tool_choice")
    if choice is not None:
        kind = choice.get("type") if isinstance(choice, dict) else None
        if kind not in ("auto", "any", "tool", "none"):
            return ("tool_choice: Input tag does not match any of the expected tags: "
                    "'auto', 'any', 'tool', 'none'")
        if kind in ("any", "tool") and not names:
            return "tool_choice: tool_choice may only be specified while providing tools."
        if kind == "tool" and choice.get("name") not in names:
            return f"tool_choice.name: Tool '{choice.get('name')}' not found in tools"

    messages = request["messages"]
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    for i, m in enumerate(messages):
        role = m.get("role") if isinstance(m, dict) else None
        if role == "system":
            return ('messages: Unexpected role "system". The Messages API accepts a top-level '
                    '`system` parameter, not "system" as an input message role.')
        if role not in ("user", "assistant"):
            return f"messages.{i}.role: Input should be 'user' or 'assistant'"
        content = m.get("content")
        final_assistant = role == "assistant" and i == len(messages) - 1
        if content == "" or content == []:
            if not final_assistant:
                return (f"messages.{i}: all messages must have non-empty content except "
                        "for the optional final assistant message")
            continue
        if not isinstance(content, (str, list)):
            return f"messages.{i}.content: Input should be a valid string or list"
        allowed = _USER_BLOCKS if role == "user" else _ASSISTANT_BLOCKS
        seen_other = False
        for j, block in enumerate(_blocks(content)):
            kind = block.get("type")
            where = f"messages.{i}.content.{j}"
            if kind not in allowed:
                return (f"{where}.type: Input tag '{kind}' found using 'type' does not match "
                        f"any of the expected tags for a {role} message: "
                        + ", ".join(sorted(allowed)))
            if kind == "text" and not (isinstance(block.get("text"), str) and block["text"]):
                return f"{where}.text: text content blocks must be non-empty"
            if kind == "image":
                source = block.get("source") if isinstance(block.get("source"), dict) else {}
                if source.get("type") == "base64":
                    if source.get("media_type") not in _IMAGE_TYPES:
                        return (f"{where}.image.source.base64.media_type: Input should be "
                                + ", ".join(f"'{t}'" for t in sorted(_IMAGE_TYPES)))
                    try:
                        base64.b64decode(source.get("data") or "", validate=True)
                    except ValueError:
                        return f"{where}.image.source.base64.data: invalid base64 data"
                elif source.get("type") == "url":
                    if not str(source.get("url", "")).startswith(("http://", "https://")):
                        return f"{where}.image.source.url.url: Input should be an http(s) URL"
                else:
                    return (f"{where}.image.source: Input tag '{source.get('type')}' does not "
                            "match any of the expected tags: 'base64', 'url'")
            if kind == "tool_use" and not isinstance(block.get("input"), dict):
                return f"{where}.tool_use.input: Input should be a valid dictionary"
            if kind == "tool_result":
                if seen_other:
                    return (f"messages.{i}: `tool_result` blocks must come first in the "
                            "content of a user message, before any other block")
            else:
                seen_other = True
        # tool_use in an assistant turn <-> tool_result in the user turn after it.
        if role == "user":
            given = [b.get("tool_use_id") for b in _blocks(content)
                     if b.get("type") == "tool_result"]
            before = messages[i - 1] if i > 0 else {}
            asked = [b.get("id") for b in _blocks(before.get("content"))
                     if before.get("role") == "assistant" and b.get("type") == "tool_use"]
            stray = [t for t in given if t not in asked]
            if stray:
                return (f"messages.{i}.content.0: unexpected `tool_use_id` found in "
                        f"`tool_result` blocks: {', '.join(map(str, stray))}. Each "
                        "`tool_result` block must have a corresponding `tool_use` block in "
                        "the previous message.")
            missing = [t for t in asked if t not in given]
            if missing:
                return (f"messages.{i - 1}: `tool_use` ids were found without `tool_result` "
                        f"blocks immediately after: {', '.join(map(str, missing))}. Each "
                        "`tool_use` block must have a corresponding `tool_result` block in "
                        "the next message.")
    return None


def _json_fragments(text: str) -> list[str]:
    """`text` cut every 5 characters, as Anthropic streams a tool's input."""
    return [text[i:i + 5] for i in range(0, len(text), 5)]


def _text(content: Any) -> str:
    """The text of a message `content` (string or list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _answer_text(request: dict[str, Any], messages: list[dict[str, Any]]) -> str:
    last_user = next((_text(m.get("content")) for m in reversed(messages)
                      if m.get("role") == "user"), "")
    fmt = request.get("response_format") or {}
    if fmt.get("type") == "json_object":
        return json.dumps({"answer": f"You said: {last_user}", "ok": True})
    if fmt.get("type") == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema") or {}
        return json.dumps(_fit(schema))
    return f"Hello from the mock upstream! You said: {last_user}"


def _fit(schema: dict[str, Any]) -> Any:
    """A value that satisfies the simple JSON Schemas the tests send."""
    if "$ref" in schema or "anyOf" in schema:
        return None
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return {name: _fit(sub) for name, sub in (schema.get("properties") or {}).items()}
    if kind == "array":
        return [_fit(schema.get("items") or {})]
    if kind == "integer":
        return 7
    if kind == "number":
        return 21.5
    if kind == "boolean":
        return True
    if "enum" in schema:
        return schema["enum"][0]
    return "Oslo"


def _pieces(text: str) -> list[str]:
    """`text` cut into word-sized deltas whose concatenation is `text`."""
    words = text.split(" ")
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


def _split_arguments(arguments: str) -> list[str]:
    """Argument fragments as OpenAI streams them: `{"city":` then `"Oslo"}`."""
    cut = arguments.index(":") + 1
    return [arguments[:cut], arguments[cut:]]
