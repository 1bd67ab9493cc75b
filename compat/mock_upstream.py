"""A small OpenAI-compatible upstream for the compatibility suite.

Pure standard library: a ``ThreadingHTTPServer`` on ``127.0.0.1`` (port 0),
run in a daemon thread by the ``upstream`` fixture in ``conftest.py``.

Endpoints, all under ``/v1``:

- ``POST /v1/chat/completions``: plain and SSE-streamed answers. Streams end
  with ``data: [DONE]``; with ``stream_options.include_usage`` the chunk
  before it has ``"choices": []`` and the usage. With ``tools`` in the
  request it calls the first tool with ``{"city":"Oslo"}`` (streamed as
  OpenAI streams tool-call deltas; when the last user text holds
  :data:`PARALLEL_TRIGGER`, :data:`TOOL_PREAMBLE` then every tool at once);
  once the messages hold a ``role: tool`` message it answers with text
  quoting the results of the last run of tool messages.
  A text answer ends before a ``stop`` string, or after ``max_tokens`` (or
  ``max_completion_tokens``) words with ``finish_reason: length``.
  ``response_format`` ``json_object`` / ``json_schema`` makes the content a
  JSON document (for ``json_schema``, one that fits the schema's properties).
  A last message with ``role: assistant`` and text is a *prefill*, continued
  as llama.cpp or vLLM continue one: the answer is what it would be without
  that message, and when it starts with the prefill's text only the rest is
  sent (``"Hello from"`` -> ``" the mock upstream! You said: ..."``, streamed
  in word-sized pieces), its tokens counted from that rest; an answer that
  does not start with it is sent whole.
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
  said: ..." once the last user turn holds a ``tool_result``. With
  ``thinking: {"type": "enabled"}`` (``budget_tokens`` at least 1024 and
  below ``max_tokens``) a signed ``thinking`` block (:data:`THINKING_TEXT`)
  comes first; a ``thinking`` block sent back needs its ``signature``.
  Fields a beta adds are admitted only under its ``anthropic-beta`` header
  (:data:`MESSAGES_BETA_FIELDS`). Usage always
  reports :data:`CACHE_CREATION_INPUT_TOKENS` and
  :data:`CACHE_READ_INPUT_TOKENS` on top of ``input_tokens`` (see
  :func:`messages_input_tokens`). ``stream: true`` gives the documented
  event sequence (``message_start``, ``ping``, ``content_block_start`` /
  ``content_block_delta`` / ``content_block_stop`` per block,
  ``message_delta``, ``message_stop``), every event named by an ``event:``
  line. Responses carry Anthropic's ``request-id`` header.
- ``POST /v1/messages/count_tokens``: the same headers and checks (no
  ``max_tokens``, ``stream`` or sampling fields), answered
  ``{"input_tokens": n}`` with the count a Messages answer would report.
- ``POST /v1beta/models/{model}:generateContent`` and
  ``:streamGenerateContent?alt=sse``: Google's Gemini API, for
  ``provider: gemini`` upstreams. The key must be :data:`GEMINI_KEY` in
  ``x-goog-api-key`` (none: 403 ``PERMISSION_DENIED``; another: 400
  ``API_KEY_INVALID``). It refuses (400 ``INVALID_ARGUMENT``, in Google's
  words) what Gemini refuses: an unknown field anywhere it checks ("Unknown
  name ... Cannot find field", e.g. ``additionalProperties`` in a
  ``parameters`` or ``responseSchema``, which take Gemini's OpenAPI subset),
  a role other than ``user``/``model``, empty parts or texts, bad base64 in
  ``inlineData``, a ``functionResponse`` turn that does not follow (and
  match in number) a ``functionCall`` turn, a thought signature it never
  handed out, and, for ``gemini-3*`` models, a ``functionCall`` of the
  current turn sent back without its ``thoughtSignature`` (or one of the
  bypass values Google documents, :data:`GEMINI_BYPASS_SIGNATURES`). It answers with
  the chat echo text (cut at ``stopSequences``, or after ``maxOutputTokens``
  words: ``MAX_TOKENS``), ``candidateCount`` candidates; with
  ``functionDeclarations`` (and mode not ``NONE``) a ``functionCall`` part
  (the first function, or the allowed one under ``ANY``; ``args`` fit its
  schema) carrying a fresh ``thoughtSignature`` (every function at once when
  the user's text says :data:`PARALLEL_TRIGGER`, only the first part
  signed, as Gemini 3 does); "The tool said: ..." once
  the last turn holds a ``functionResponse``; JSON that fits the schema
  under ``responseMimeType: application/json``. ``usageMetadata`` counts
  words (:func:`gemini_prompt_tokens`) plus :data:`GEMINI_THOUGHTS_TOKENS`.
  Streams are SSE events ``data: {...}`` + CRLF CRLF, one text piece each,
  usage so far on each, ``finishReason`` on the last, no terminator.
- ``POST /model/{modelId}/converse`` and ``/converse-stream``: Amazon
  Bedrock's Converse API, for ``provider: bedrock`` upstreams. Every
  request must carry the Bedrock API key (``Authorization: Bearer``
  :data:`BEDROCK_API_KEY`) or a SigV4 signature that the mock recomputes
  from the request as received (:func:`check_bedrock_auth`: canonical URI
  re-encoded per segment, signed headers, body hash, scope
  ``date/region/bedrock/aws4_request``, key :data:`BEDROCK_ACCESS_KEY_ID`
  with its secret and session token, a clock skew of 5 minutes); else 403
  with AWS's error type (``InvalidSignatureException``, ...). The verdict
  is kept on the record (``Received.auth``). It refuses (400
  ``ValidationException``, in Bedrock's words) an unknown model id, a
  conversation that does not start with a user turn or does not alternate,
  blank texts, bad images, ``toolUse``/``toolResult`` blocks that do not
  pair up or come without ``toolConfig``, ``temperature``/``topP`` above 1,
  a bad tool name or ``toolChoice``, and tools or images for the Llama
  model. It answers like the Messages handler (a text block, then a
  ``toolUse`` block when tools are given: the first tool, or the one
  ``toolChoice.tool`` names, or all of them for :data:`PARALLEL_TRIGGER`;
  with ``auto`` a short text comes first) and
  streams in AWS's binary event stream (:func:`eventstream_frame`), every
  payload padded with Bedrock's ``p`` field, written in 29-byte chunks.
  Errors carry ``x-amzn-ErrorType`` and ``{"message": ...}``.

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
  ``overloaded_error`` (on ``count_tokens`` too).
- :data:`ANTHROPIC_ERROR_MID_STREAM` (``claude-error-mid-stream``): a stream
  that sends an ``error`` event (``overloaded_error``) right after its first
  text delta, then ends; answered normally when not streamed.
- :data:`ANTHROPIC_CUT_STREAM` (``claude-cut-stream``): the connection drops
  right after the first text delta.
- :data:`ANTHROPIC_STREAM_OVERLOADED` (``claude-stream-overloaded``) and
  :data:`ANTHROPIC_CUT_EARLY` (``claude-cut-early``): streams that fail
  before any content, after ``message_start`` and ``ping``: an ``error``
  event (``overloaded_error``), or the connection drops.
- :data:`ANTHROPIC_RATE_LIMITED` (``claude-rate-limited``): 429
  ``rate_limit_error`` with ``retry-after: 0`` and Anthropic's
  ``anthropic-ratelimit-*`` headers.
- :data:`ANTHROPIC_HANG` (``claude-hang``): the first text delta, then it
  waits for the client to hang up (:meth:`MockUpstream.wait_for_dropped`).

and on ``/v1/chat/completions``, :data:`CHAT_HANG` (``hang``) does the same
after its first content chunk, :data:`CHAT_REASONER` (``reasoner``)
answers with ``reasoning_content`` (:data:`REASONING_TEXT`) before the text,
:data:`CHAT_ERROR_MID_STREAM`, :data:`CHAT_NO_DONE` and :data:`CHAT_FILTERED`
end their streams unusually (:data:`CHAT_ERROR_LATE`, ``error-late``, and
:data:`CHAT_ERROR_AT_ONCE`, ``error-at-once``, send the same error event
after a pause, or in one write with the chunks before it),
:data:`CHAT_TRUNCATED` (``truncated``) ends its stream cleanly after two
content chunks with neither a ``finish_reason`` nor ``[DONE]``, :data:`CHAT_NO_PREFILL` (``no-prefill``) refuses a prefill (a
last ``assistant`` message) with 400 ``invalid_request_error``
(:data:`NO_PREFILL_MESSAGE`) and answers normally otherwise,
:data:`CHAT_REFUSER` answers only a ``refusal``,
:data:`CHAT_TERSE_STREAM` packs the last piece, the finish reason and the
usage into one chunk (and finishes tool calls with ``stop``), and :data:`CHAT_CALLS_AT_INDEX_ZERO` streams
each parallel tool call whole at index 0.

on the Gemini routes (each answered normally when not streamed, unless it
always fails):

- :data:`GEMINI_QUOTA` (``gemini-quota``): 429 ``RESOURCE_EXHAUSTED``.
- :data:`GEMINI_OVERLOADED` (``gemini-overloaded``): 503 ``UNAVAILABLE``.
- :data:`GEMINI_ERROR_MID_STREAM`: an event ``{"error": {... UNAVAILABLE}}``
  right after the first text piece, then the end of the stream.
- :data:`GEMINI_CUT_STREAM`: the connection drops after two text pieces.
- :data:`GEMINI_SLOW`: answers after :data:`SLOW_S` seconds.
- :data:`GEMINI_HANG`: sends the first piece, then waits up to :data:`HANG_S`
  for the client to hang up (noted: :meth:`MockUpstream.wait_for_dropped`).
- :data:`GEMINI_BLOCKED`: a 200 without candidates whose
  ``promptFeedback.blockReason`` is ``SAFETY`` (one such event when streamed).

and on the Bedrock routes, the same in AWS's terms:
:data:`BEDROCK_THROTTLED` (429 ``ThrottlingException``),
:data:`BEDROCK_UNAVAILABLE` (503 ``ServiceUnavailableException``),
:data:`BEDROCK_STREAM_EXCEPTION` (a ``modelStreamErrorException`` frame after
the first text delta), :data:`BEDROCK_STREAM_THROTTLED` (a
``throttlingException`` frame before any content), :data:`BEDROCK_CUT_STREAM`
(the connection drops in the middle of the fourth frame),
:data:`BEDROCK_SLOW`, :data:`BEDROCK_HANG`, and :data:`BEDROCK_GUARDRAIL`
(answers :data:`BEDROCK_GUARDRAIL_TEXT` with ``guardrail_intervened``).

Every request is recorded (:class:`Received`) and counted per model (for
Gemini and Bedrock, the model in the path), so tests can check what the
router forwarded and how often the SDK retried; the record keeps the
response body the mock wrote (``Received.response``), so tests can compare
it byte for byte with what the client got.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import itertools
import json
import re
import select
import socket
import struct
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

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
#: Streams its first text delta, then waits for the client to hang up
#: (noted: `MockUpstream.wait_for_dropped`); answered normally when not streamed.
ANTHROPIC_HANG = "claude-hang"
#: Streams its first text delta, then the connection drops (between events).
ANTHROPIC_CUT_STREAM = "claude-cut-stream"
#: Before any content (after `message_start` and `ping`): an `error` event
#: (`overloaded_error`, as Anthropic sends when it is overloaded mid-request),
#: or the connection drops.
ANTHROPIC_STREAM_OVERLOADED = "claude-stream-overloaded"
ANTHROPIC_CUT_EARLY = "claude-cut-early"
#: 429 `rate_limit_error` with Anthropic's rate-limit headers.
ANTHROPIC_RATE_LIMITED = "claude-rate-limited"
ANTHROPIC_RATE_LIMIT_MESSAGE = ("This request would exceed the rate limit for your "
                                "organization of 50 requests per minute.")
ANTHROPIC_RATE_LIMIT_HEADERS = {
    "retry-after": "0",
    "anthropic-ratelimit-requests-limit": "50",
    "anthropic-ratelimit-requests-remaining": "0",
    "anthropic-ratelimit-requests-reset": "2026-12-07T00:00:01Z",
}
#: The chat model that does the same as `claude-hang` on `/v1/chat/completions`.
CHAT_HANG = "hang"
#: A chat model that reasons first, as DeepSeek and vLLM report it:
#: `message.reasoning_content` (streamed as `delta.reasoning_content`) before
#: the answer.
CHAT_REASONER = "reasoner"
REASONING_TEXT = "The user said ping. I will echo it."
#: Chat models whose streams end unusually: an `{"error": ...}` event after
#: the first content chunk (as OpenAI sends when a stream fails), then the
#: end; a clean end without `data: [DONE]` (as some servers do); and a
#: content filter that stops the answer after two words (`content_filter`).
CHAT_ERROR_MID_STREAM = "error-mid-stream"
CHAT_ERROR_MESSAGE = "The server had an error while processing your request. Sorry about that!"
#: The same error event, sent :data:`PAUSE_S` after the first content chunk
#: (so a client reads it on its own), or written in one chunk together with
#: the role chunk and the first content chunk (so a client reads all three
#: at once). `error-mid-stream` writes them one by one, without a pause.
CHAT_ERROR_LATE = "error-late"
CHAT_ERROR_AT_ONCE = "error-at-once"
#: How long `error-late` waits before its error event.
PAUSE_S = 0.2
CHAT_NO_DONE = "no-done"
#: A stream whose body ends cleanly (terminating chunk) after the role chunk
#: and two content chunks: no `finish_reason`, no `[DONE]` (an answer cut
#: short by a server that closed it as if it were whole).
CHAT_TRUNCATED = "truncated"
#: A chat model that cannot continue a prefill (a last `assistant` message),
#: refused as Anthropic's newer models refuse one; answered normally otherwise.
CHAT_NO_PREFILL = "no-prefill"
NO_PREFILL_MESSAGE = ("This model does not support assistant message prefill. "
                      "The conversation must end with a user message.")
CHAT_FILTERED = "filtered"
#: Streams as some OpenAI-compatible servers do: the last text piece in the
#: chunk that carries `finish_reason`, with the usage in that same chunk
#: (no `choices: []` usage chunk); and finishes tool calls with `stop`
#: instead of `tool_calls` (as Ollama does).
CHAT_TERSE_STREAM = "terse-stream"
#: Refuses every request: `content: null` and a `refusal`, as OpenAI's
#: structured-output refusals read (streamed as `delta.refusal`).
CHAT_REFUSER = "refuser"
REFUSAL_TEXT = "I'm sorry, I can't help with that."
#: Streams parallel tool calls each whole in one chunk, all at `index` 0
#: (as some OpenAI-compatible servers do), told apart only by their ids.
CHAT_CALLS_AT_INDEX_ZERO = "calls-at-index-zero"
#: An `anthropic-beta` value the mock knows, and the top-level fields it
#: admits (as the real API admits a beta's new fields only under its header).
MESSAGES_BETA = "compat-future-field-2026-01-01"
MESSAGES_BETA_FIELDS: dict[str, frozenset[str]] = {MESSAGES_BETA: frozenset({"future_field"})}
#: With `thinking: {"type": "enabled"}`, every answer starts with this
#: `thinking` block text, signed (`signature`, opaque) as Claude signs it.
THINKING_TEXT = "The user wants an echo. I will echo."
#: What every Messages answer reports besides `input_tokens` (which excludes them).
CACHE_CREATION_INPUT_TOKENS = 4
CACHE_READ_INPUT_TOKENS = 3
#: The text block before a `tool_use` block when `tool_choice` is `auto`.
TOOL_PREAMBLE = "Let me look that up."
#: Words in the last user text that make the Gemini and Bedrock mocks call
#: every tool offered at once (parallel calls) instead of the first.
PARALLEL_TRIGGER = "all tools"
#: The top-level fields the Messages API takes; any other is refused
#: ("Extra inputs are not permitted"), as the real API does.
MESSAGES_FIELDS = frozenset({
    "model", "messages", "max_tokens", "system", "metadata", "stop_sequences", "stream",
    "temperature", "top_p", "top_k", "tools", "tool_choice", "thinking", "service_tier",
    "container", "mcp_servers", "context_management",
})
#: The top-level fields `POST /v1/messages/count_tokens` takes.
COUNT_TOKENS_FIELDS = frozenset({
    "model", "messages", "system", "tools", "tool_choice", "thinking", "mcp_servers",
    "context_management",
})

#: How long a hanging stream (`gemini-hang`, `mock.hang-v1:0`) waits, after
#: its first token, for the client to hang up before it finishes anyway.
HANG_S = 10.0

#: Gemini's side (``POST /v1beta/models/{model}:generateContent``). The key
#: it accepts in `x-goog-api-key` (real keys start with `AIza` too).
GEMINI_PREFIX = "/v1beta/models/"
GEMINI_KEY = "AIzaSyCompatGeminiUpstreamSecret0123456"
#: Models answered normally; Gemini 3 insists on its thought signatures.
GEMINI_MODEL = "gemini-2.5-flash"
GEMINI_3_MODEL = "gemini-3-pro-preview"
#: Models that fail on purpose (see the module docstring).
GEMINI_OVERLOADED = "gemini-overloaded"
GEMINI_QUOTA = "gemini-quota"
GEMINI_ERROR_MID_STREAM = "gemini-error-mid-stream"
GEMINI_CUT_STREAM = "gemini-cut-stream"
GEMINI_SLOW = "gemini-slow"
GEMINI_HANG = "gemini-hang"
#: Blocks every prompt: a 200 with `promptFeedback.blockReason` and no candidates.
GEMINI_BLOCKED = "gemini-blocked"
GEMINI_MODELS = frozenset({
    GEMINI_MODEL, GEMINI_3_MODEL, GEMINI_OVERLOADED, GEMINI_QUOTA, GEMINI_ERROR_MID_STREAM,
    GEMINI_CUT_STREAM, GEMINI_SLOW, GEMINI_HANG, GEMINI_BLOCKED,
})
GEMINI_OVERLOADED_MESSAGE = "The model is overloaded. Please try again later."
GEMINI_QUOTA_MESSAGE = (
    "You exceeded your current quota, please check your plan and billing details. For more "
    "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.")
#: `usageMetadata.thoughtsTokenCount` of every answer (2.5 and 3 think).
GEMINI_THOUGHTS_TOKENS = 6
#: The signatures Google documents for function calls Gemini did not make
#: (a history from another model): they pass the validation.
GEMINI_BYPASS_SIGNATURES = frozenset({"context_engineering_is_the_way_to_go",
                                      "skip_thought_signature_validator"})

#: Bedrock's side (``POST /model/{modelId}/converse``). The SigV4 keys it
#: knows (AWS's documented example pair) and the session token that must
#: come with them; the Bedrock API key it accepts as `Authorization: Bearer`.
BEDROCK_ACCESS_KEY_ID = "AKIDEXAMPLE"
BEDROCK_SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
BEDROCK_SESSION_TOKEN = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJH+compat/token="
BEDROCK_API_KEY = "ABSKQmVkcm9ja0FQSUtleS1jb21wYXQtc2VjcmV0LWZvci10ZXN0cw=="
#: How far `x-amz-date` may be from the mock's clock, as AWS allows.
BEDROCK_CLOCK_SKEW = timedelta(minutes=5)
#: Models answered normally: a Claude (tools, images, any tool choice) and a
#: Llama 3 (neither tools nor images, as on Bedrock).
BEDROCK_CLAUDE = "anthropic.claude-3-5-haiku-20241022-v1:0"
BEDROCK_LLAMA = "meta.llama3-8b-instruct-v1:0"
#: Models that fail on purpose (Claude-like otherwise; see the module docstring).
BEDROCK_THROTTLED = "mock.throttled-v1:0"
BEDROCK_UNAVAILABLE = "mock.unavailable-v1:0"
BEDROCK_STREAM_EXCEPTION = "mock.stream-exception-v1:0"
BEDROCK_STREAM_THROTTLED = "mock.stream-throttled-v1:0"
BEDROCK_CUT_STREAM = "mock.cut-stream-v1:0"
BEDROCK_SLOW = "mock.slow-v1:0"
BEDROCK_HANG = "mock.hang-v1:0"
#: A guardrail that intervenes on every request (`stopReason: guardrail_intervened`).
BEDROCK_GUARDRAIL = "mock.guardrail-v1:0"
BEDROCK_GUARDRAIL_TEXT = "Sorry, the model cannot answer this question."
BEDROCK_MODELS = frozenset({
    BEDROCK_CLAUDE, BEDROCK_LLAMA, BEDROCK_THROTTLED, BEDROCK_UNAVAILABLE,
    BEDROCK_STREAM_EXCEPTION, BEDROCK_STREAM_THROTTLED, BEDROCK_CUT_STREAM, BEDROCK_SLOW,
    BEDROCK_HANG, BEDROCK_GUARDRAIL,
})
BEDROCK_THROTTLED_MESSAGE = "Too many requests, please wait before trying again."
BEDROCK_UNAVAILABLE_MESSAGE = "Bedrock is unable to process your request."
BEDROCK_STREAM_ERROR_MESSAGE = "The model stream failed: an internal error occurred."
#: The top-level fields of a Converse request.
CONVERSE_FIELDS = frozenset({
    "messages", "system", "inferenceConfig", "toolConfig", "guardrailConfig",
    "additionalModelRequestFields", "promptVariables", "additionalModelResponseFieldPaths",
    "requestMetadata", "performanceConfig", "serviceTier",
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
    #: The upstream model it named: the body's `model`, or for Gemini and
    #: Bedrock the one in the path (Bedrock's URL-decoded).
    model: str | None = None
    #: Every header line as received, in order, names as sent (SigV4 needs them).
    header_lines: list[tuple[str, str]] = field(default_factory=list)
    #: Bedrock only: how the request authenticated, and whether that held.
    auth: "AuthCheck | None" = None
    #: The response body the mock wrote for it, byte for byte (a stream's
    #: events as written, without the chunked framing), to compare with what
    #: a client received through the router.
    response: bytearray = field(default_factory=bytearray)


@dataclass
class _Log:
    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: list[Received] = field(default_factory=list)
    per_model: dict[str, int] = field(default_factory=dict)
    #: Models whose streams the client (the router) dropped before the end.
    dropped: list[str] = field(default_factory=list)
    dropped_changed: threading.Condition = field(default_factory=threading.Condition)


class MockUpstream:
    """The server plus what it has seen. Use :meth:`start` / :meth:`stop`."""

    def __init__(self) -> None:
        self._log = _Log()
        self.stopping = threading.Event()
        self._ids = itertools.count(1)
        #: Gemini thought signatures handed out: signature -> the function
        #: name of the `functionCall` part it came on (kept across resets).
        self.thought_signatures: dict[str, str] = {}
        self._last_signature: str | None = None
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
        with self._log.dropped_changed:
            self._log.dropped.clear()

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
        model = received.model
        with self._log.lock:
            self._log.requests.append(received)
            if isinstance(model, str):
                self._log.per_model[model] = self._log.per_model.get(model, 0) + 1

    def next_id(self) -> int:
        return next(self._ids)

    # -- streams the client left ------------------------------------------

    def note_dropped(self, model: str) -> None:
        with self._log.dropped_changed:
            self._log.dropped.append(model)
            self._log.dropped_changed.notify_all()

    def dropped(self, model: str) -> int:
        """How many streams of `model` the client hung up on mid-answer."""
        with self._log.dropped_changed:
            return self._log.dropped.count(model)

    def wait_for_dropped(self, model: str, timeout: float) -> bool:
        """Waits (up to `timeout` seconds) until a stream of `model` has
        been dropped by the client; True if one was."""
        with self._log.dropped_changed:
            return self._log.dropped_changed.wait_for(
                lambda: model in self._log.dropped, timeout=timeout)

    # -- Gemini thought signatures ------------------------------------------

    def issue_thought_signature(self, name: str, args: Any) -> str:
        """A new opaque signature for a `functionCall` part (base64 of 100
        bytes, with `+`, `/` and `=` in it, as long as real ones often are)."""
        seed = f"{self.next_id()}|{name}|{json.dumps(args, sort_keys=True)}".encode()
        raw = hashlib.sha256(seed).digest() * 3 + b"mock"
        signature = base64.b64encode(raw).decode()
        with self._log.lock:
            self.thought_signatures[signature] = name
            self._last_signature = signature
        return signature

    def last_thought_signature(self) -> str:
        with self._log.lock:
            if self._last_signature is None:
                raise AssertionError("the mock has handed out no thought signature")
            return self._last_signature


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
        route = urlsplit(self.path).path
        model: str | None = body.get("model") if isinstance(body, dict) else None
        if route.startswith(GEMINI_PREFIX):
            model = route[len(GEMINI_PREFIX):].rpartition(":")[0] or None
        elif route.startswith("/model/"):
            segments = route.split("/")
            model = unquote(segments[2]) if len(segments) > 2 else None
        if not isinstance(model, str):
            model = None
        received = Received(self.command, self.path, headers, raw, body, model,
                            list(self.headers.items()))
        self._received = received
        self.mock._record(received)
        return received

    def _note_sent(self, data: bytes) -> None:
        received = getattr(self, "_received", None)
        if received is not None:
            received.response.extend(data)

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None,
              content_type: str = "application/json",
              request_id_header: str | None = "x-request-id") -> None:
        # Noted first: the router may act on the status line alone (and a
        # test look at what was sent) before the body is written.
        self._note_sent(body)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if request_id_header is not None:
            self.send_header(request_id_header,
                             f"{UPSTREAM_REQUEST_ID_PREFIX}{self.mock.next_id()}")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def _send_json(self, status: int, value: Any) -> None:
        self._send(status, json.dumps(value).encode())

    def _send_sse(self, events: list[Any], *, cut_after: int | None = None,
                  mid_event: bool = False, named: bool = False,
                  request_id_header: str = "x-request-id",
                  hold_after: int | None = None, model: str = "",
                  done: bool = True, pause_before: int | None = None,
                  joined: int = 1) -> None:
        """Streams `events` (JSON values) as OpenAI does, then `[DONE]`.

        `cut_after`: drop the connection after that many events instead
        (`mid_event`: after half of the next event too), with no final chunk.
        `named`: Responses- and Anthropic-style frames with an `event:` line
        and no `[DONE]` (`done=False`: no `[DONE]` either). `hold_after`:
        after that many events, wait for the
        client to hang up (noted under `model`, see `_hold_until_dropped`)
        and stop there if it did. `pause_before`: wait :data:`PAUSE_S`
        before that event (so it reaches the client in a read of its own).
        `joined`: write the first that many events as one chunk, in one
        write (so the client reads them at once).
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
        if not named and done:
            frames.append(b"data: [DONE]\n\n")
        if cut_after is not None:
            partial = frames[cut_after][: len(frames[cut_after]) // 2] if mid_event else b""
            frames = frames[:cut_after] + ([partial] if partial else [])
        if joined > 1:
            frames = [b"".join(frames[:joined]), *frames[joined:]]
        for n, frame in enumerate(frames):
            if n == hold_after and self._hold_until_dropped(model):
                return
            if n == pause_before:
                self.mock.stopping.wait(PAUSE_S)
            self._note_sent(frame)
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
        route = urlsplit(self.path).path
        if route.startswith(GEMINI_PREFIX):
            self._gemini(received)  # Gemini: its own key, checks and failures
            return
        if route.startswith("/model/"):
            self._bedrock(received)  # Bedrock Converse: SigV4, checks, event streams
            return
        request = received.body
        if not isinstance(request, dict) and not route.startswith("/v1/messages"):
            self._send(400, _error_body(
                "We could not parse the JSON body of your request.",
                "invalid_request_error", None, None))
            return
        # Anthropic's API takes a query (the SDKs' beta client adds `?beta=true`).
        if route == "/v1/messages":
            self._messages(received)  # Anthropic: its own checks and failures
            return
        if route == "/v1/messages/count_tokens":
            self._count_tokens(received)
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
        # A trailing assistant message with text: a prefill to continue.
        prefill = _prefill(messages)
        if prefill is not None and model == CHAT_NO_PREFILL:
            self._send(400, _error_body(NO_PREFILL_MESSAGE, "invalid_request_error",
                                        "messages", None))
            return
        prompt_messages = messages
        if prefill is not None:
            messages = messages[:-1]
        cid = f"chatcmpl-mock{self.mock.next_id()}"
        created = int(time.time())

        last_tool = next((i for i in range(len(messages) - 1, -1, -1)
                          if messages[i].get("role") == "tool"), None)
        tools = request.get("tools") or []
        tool_calls: list[dict[str, str]] = []
        if last_tool is not None:
            # The run of tool messages that ends with the last one (parallel
            # calls answer in one run), quoted in order.
            first = last_tool
            while first > 0 and messages[first - 1].get("role") == "tool":
                first -= 1
            results = "; ".join(_text(m.get("content")) for m in messages[first:last_tool + 1])
            content = f"The tool said: {results}"
        elif tools:
            last_user = next((_text(m.get("content")) for m in reversed(messages)
                              if m.get("role") == "user"), "")
            # Every tool at once, after a short text, for PARALLEL_TRIGGER.
            every = PARALLEL_TRIGGER in last_user
            for tool in tools if every else tools[:1]:
                tool_calls.append({"id": f"call_mock{self.mock.next_id()}",
                                   "name": tool.get("function", {}).get("name", "tool")})
            content = TOOL_PREAMBLE if every else None
        else:
            content = _answer_text(request, messages)
        finish = "tool_calls" if tool_calls and model != CHAT_TERSE_STREAM else "stop"
        refusal = None
        if model == CHAT_REFUSER and not tool_calls:
            content, refusal = None, REFUSAL_TEXT
        # The rest of an answer that starts with the prefill; else all of it.
        continued = (prefill is not None and bool(content) and not tool_calls
                     and refusal is None and content.startswith(prefill))
        if continued:
            content = content[len(prefill):]
        if model == CHAT_FILTERED and content:
            content, finish = " ".join(content.split(" ")[:2]), "content_filter"
        elif content and not tool_calls:
            # As OpenAI: the text ends before a `stop` string (the finish
            # reason stays `stop`) or after the token limit (`length`).
            stops = request.get("stop")
            for seq in [stops] if isinstance(stops, str) else stops or []:
                if seq and seq in content:
                    content = content[:content.find(seq)]
            limit = request.get("max_completion_tokens") or request.get("max_tokens")
            if continued:
                words = _continued_pieces(content)
                if isinstance(limit, int) and len(words) > limit:
                    content, finish = "".join(words[:limit]), "length"
            elif isinstance(limit, int) and len(content.split(" ")) > limit:
                content, finish = " ".join(content.split(" ")[:limit]), "length"

        prompt_tokens = sum(len(_text(m.get("content")).split()) for m in prompt_messages) + 1
        completion_tokens = (len((content or "").split())
                             + len(tool_calls) * len(TOOL_ARGUMENTS.split()))
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }

        reasoning = REASONING_TEXT if model == CHAT_REASONER else None
        if not stream:
            message: dict[str, Any] = {"role": "assistant", "content": content,
                                       "refusal": refusal}
            if reasoning:
                message["reasoning_content"] = reasoning
            if tool_calls:
                message["tool_calls"] = [{
                    "id": call["id"], "type": "function",
                    "function": {"name": call["name"], "arguments": TOOL_ARGUMENTS},
                } for call in tool_calls]
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
        if tool_calls:
            if content:
                events.append(chunk({"role": "assistant", "content": "", "refusal": None}))
                events.extend(chunk({"content": piece}) for piece in _pieces(content))
            for k, call in enumerate(tool_calls):
                head = {"role": "assistant", "content": None} if k == 0 and not content else {}
                if model == CHAT_CALLS_AT_INDEX_ZERO:
                    events.append(chunk({**head, "tool_calls": [{
                        "index": 0, "id": call["id"], "type": "function",
                        "function": {"name": call["name"], "arguments": TOOL_ARGUMENTS}}]}))
                    continue
                events.append(chunk({**head, "tool_calls": [{
                    "index": k, "id": call["id"], "type": "function",
                    "function": {"name": call["name"], "arguments": ""}}]}))
                for piece in _split_arguments(TOOL_ARGUMENTS):
                    events.append(chunk({"tool_calls": [{"index": k,
                                                         "function": {"arguments": piece}}]}))
        else:
            events.append(chunk({"role": "assistant", "content": "", "refusal": None}))
            for piece in _pieces(refusal) if refusal else []:
                events.append(chunk({"refusal": piece}))
            for piece in _pieces(reasoning) if reasoning else []:
                events.append(chunk({"reasoning_content": piece}))
            for piece in _continued_pieces(content) if continued else _pieces(content or ""):
                events.append(chunk({"content": piece}))
        events.append(chunk({}, finish))
        if model == CHAT_TERSE_STREAM:
            last = events.pop()
            if events[-1]["choices"][0]["delta"].get("content"):
                last = events.pop()
                last["choices"][0]["finish_reason"] = finish
            last["usage"] = usage
            events.append(last)
        elif include_usage:
            events.append({
                "id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                "system_fingerprint": "fp_mock", "choices": [], "usage": usage,
            })
        if model in ("cut-stream", "cut-mid-event"):
            # role chunk + two content chunks, then the connection drops.
            self._send_sse(events, cut_after=3, mid_event=model == "cut-mid-event")
        elif model == CHAT_HANG:
            # role chunk + one content chunk, then wait for the client to leave.
            self._send_sse(events, hold_after=2, model=model)
        elif model in (CHAT_ERROR_MID_STREAM, CHAT_ERROR_LATE, CHAT_ERROR_AT_ONCE):
            self._send_sse([*events[:2], {"error": {
                "message": CHAT_ERROR_MESSAGE, "type": "server_error", "param": None,
                "code": None}}], done=False,
                pause_before=2 if model == CHAT_ERROR_LATE else None,
                joined=3 if model == CHAT_ERROR_AT_ONCE else 1)
        elif model == CHAT_NO_DONE:
            self._send_sse(events, done=False)
        elif model == CHAT_TRUNCATED:
            # role chunk + two content chunks, then a clean end of the body.
            self._send_sse(events[:3], done=False)
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

    def _anthropic_error(self, status: int, type_: str, message: str,
                         headers: dict[str, str] | None = None) -> None:
        """An error in Anthropic's envelope, with its `request-id` header."""
        body = {"type": "error", "error": {"type": type_, "message": message},
                "request_id": f"req_mock{self.mock.next_id()}"}
        self._send(status, json.dumps(body).encode(), headers, request_id_header="request-id")

    def _anthropic_request(self, received: Received) -> dict[str, Any] | None:
        """The body of an Anthropic request whose headers pass, else None
        (the error already sent)."""
        if not received.headers.get("x-api-key"):
            self._anthropic_error(401, "authentication_error", "x-api-key header is required")
            return None
        if not received.headers.get("anthropic-version"):
            self._anthropic_error(400, "invalid_request_error",
                                  "anthropic-version: header is required")
            return None
        request = received.body
        if not isinstance(request, dict):
            self._anthropic_error(400, "invalid_request_error",
                                  "There was an error parsing the body of your request: "
                                  "it must be a JSON object.")
            return None
        return request

    def _count_tokens(self, received: Received) -> None:
        """`POST /v1/messages/count_tokens`: the request checked as a Messages
        request (without `max_tokens`), answered `{"input_tokens": n}` with
        the same count a Messages answer reports (:func:`messages_input_tokens`)."""
        request = self._anthropic_request(received)
        if request is None:
            return
        for name in request:
            if name not in COUNT_TOKENS_FIELDS:
                self._anthropic_error(400, "invalid_request_error",
                                      f"{name}: Extra inputs are not permitted")
                return
        # No `max_tokens` here; any budget `thinking` names is below this one.
        problem = _messages_problem({**request, "max_tokens": 1 << 30})
        if problem is not None:
            self._anthropic_error(400, "invalid_request_error", problem)
            return
        if request["model"] == ANTHROPIC_OVERLOADED:
            self._anthropic_error(529, "overloaded_error", "Overloaded")
            return
        self._send(200, json.dumps({"input_tokens": messages_input_tokens(request)}).encode(),
                   request_id_header="request-id")

    def _messages(self, received: Received) -> None:
        """`POST /v1/messages`, checked and answered as Anthropic does."""
        request = self._anthropic_request(received)
        if request is None:
            return
        betas = {b.strip() for b in received.headers.get("anthropic-beta", "").split(",")}
        problem = _messages_problem(request, betas)
        if problem is not None:
            self._anthropic_error(400, "invalid_request_error", problem)
            return
        model = request["model"]
        if model == ANTHROPIC_OVERLOADED:
            self._anthropic_error(529, "overloaded_error", "Overloaded")
            return
        if model == ANTHROPIC_RATE_LIMITED:
            self._anthropic_error(429, "rate_limit_error", ANTHROPIC_RATE_LIMIT_MESSAGE,
                                  ANTHROPIC_RATE_LIMIT_HEADERS)
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
        thinking = (request.get("thinking") or {}).get("type") == "enabled"
        if thinking:
            signature = base64.b64encode(hashlib.sha256(
                f"{self.mock.next_id()}|{THINKING_TEXT}".encode()).digest() * 2).decode()
            content.insert(0, {"type": "thinking", "thinking": THINKING_TEXT,
                               "signature": signature})
        input_tokens = messages_input_tokens(request)
        output_tokens = len(text.split()) + (
            len(json.dumps(tool_use["input"]).split()) if tool_use else 0) + (
            len(THINKING_TEXT.split()) if thinking else 0)
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
            elif block["type"] == "thinking":
                events.append({"type": "content_block_start", "index": index,
                               "content_block": {"type": "thinking", "thinking": "",
                                                 "signature": ""}})
                events.extend({"type": "content_block_delta", "index": index,
                               "delta": {"type": "thinking_delta", "thinking": piece}}
                              for piece in _pieces(block["thinking"]))
                events.append({"type": "content_block_delta", "index": index,
                               "delta": {"type": "signature_delta",
                                         "signature": block["signature"]}})
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
        if model == ANTHROPIC_STREAM_OVERLOADED:
            events = events[:2] + [{"type": "error", "error": {
                "type": "overloaded_error", "message": "Overloaded"}}]
        if model == ANTHROPIC_CUT_EARLY:
            self._send_sse(events, named=True, request_id_header="request-id", cut_after=2)
            return
        hold_after = None
        cut_after = None
        if model in (ANTHROPIC_HANG, ANTHROPIC_CUT_STREAM):
            first_delta = 1 + next(i for i, e in enumerate(events)
                                   if e["type"] == "content_block_delta")
            hold_after = first_delta if model == ANTHROPIC_HANG else None
            cut_after = first_delta if model == ANTHROPIC_CUT_STREAM else None
        self._send_sse(events, named=True, request_id_header="request-id",
                       hold_after=hold_after, cut_after=cut_after, model=model)

    # -- raw streams (Gemini, Bedrock) ----------------------------------------

    def _start_stream(self, content_type: str, headers: dict[str, str] | None = None) -> None:
        """A 200 whose body follows in chunks (`_chunk`), ended by `_end_stream`."""
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.flush()

    def _chunk(self, data: bytes) -> None:
        if data:
            self._note_sent(data)
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

    def _end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _drop_connection(self) -> None:
        """Hangs up mid-body (no terminating chunk), as a dying upstream does."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _hold_until_dropped(self, model: str) -> bool:
        """Keeps a stream open, sending nothing, until the client hangs up
        (True; noted for `MockUpstream.wait_for_dropped`) or :data:`HANG_S`
        pass or the server stops (False)."""
        deadline = time.monotonic() + HANG_S
        while time.monotonic() < deadline and not self.mock.stopping.is_set():
            readable, _, _ = select.select([self.connection], [], [], 0.05)
            if not readable:
                continue
            try:
                peeked = self.connection.recv(1, socket.MSG_PEEK)
            except OSError:
                peeked = b""
            if not peeked:  # EOF or reset: the client left
                self.close_connection = True
                self.mock.note_dropped(model)
                return True
            time.sleep(0.05)  # bytes we do not expect; keep waiting
        return False

    # -- Gemini -----------------------------------------------------------------

    def _gemini_error(self, status: int, code: str, message: str,
                      details: list[Any] | None = None) -> None:
        """An error in Google's envelope (`google.rpc.Status` as JSON)."""
        error: dict[str, Any] = {"code": status, "message": message, "status": code}
        if details:
            error["details"] = details
        self._send(status, json.dumps({"error": error}, indent=2).encode(),
                   content_type="application/json; charset=UTF-8", request_id_header=None)

    def _gemini(self, received: Received) -> None:
        """`POST /v1beta/models/{model}:generateContent` and
        `:streamGenerateContent`, checked and answered as Gemini does."""
        url = urlsplit(self.path)
        model, _, method = url.path[len(GEMINI_PREFIX):].rpartition(":")
        query = dict(parse_qsl(url.query))
        if method not in ("generateContent", "streamGenerateContent") or not model:
            self._gemini_error(404, "NOT_FOUND", f"Method not found: {url.path}")
            return
        key = received.headers.get("x-goog-api-key") or query.get("key")
        if not key:
            self._gemini_error(
                403, "PERMISSION_DENIED",
                "Method doesn't allow unregistered callers (callers without established "
                "identity). Please use API Key or other form of API consumer identity to "
                "call this API.")
            return
        if key != GEMINI_KEY:
            self._gemini_error(400, "INVALID_ARGUMENT",
                               "API key not valid. Please pass a valid API key.",
                               [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                 "reason": "API_KEY_INVALID",
                                 "domain": "googleapis.com",
                                 "metadata": {"service": "generativelanguage.googleapis.com"}}])
            return
        if model not in GEMINI_MODELS:
            self._gemini_error(
                404, "NOT_FOUND",
                f"models/{model} is not found for API version v1beta, or is not supported "
                f"for {method}. Call ListModels to see the list of available models and "
                "their supported methods.")
            return
        request = received.body
        if not isinstance(request, dict):
            self._gemini_error(400, "INVALID_ARGUMENT",
                               "Invalid JSON payload received. Expected an object.")
            return
        problem = gemini_problem(request, model, self.mock.thought_signatures)
        if problem is not None:
            self._gemini_error(400, "INVALID_ARGUMENT", problem, [{
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"description": problem}]}])
            return
        if model == GEMINI_SLOW:
            self.mock.stopping.wait(SLOW_S)
        if model == GEMINI_QUOTA:
            self._gemini_error(429, "RESOURCE_EXHAUSTED", GEMINI_QUOTA_MESSAGE, [
                {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{
                    "quotaMetric": "generativelanguage.googleapis.com/"
                                   "generate_content_free_tier_requests",
                    "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                    "quotaDimensions": {"location": "global", "model": model},
                    "quotaValue": "10"}]},
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "0s"},
            ])
            return
        if model == GEMINI_OVERLOADED:
            self._gemini_error(503, "UNAVAILABLE", GEMINI_OVERLOADED_MESSAGE)
            return

        response_id = f"mockResp{self.mock.next_id():06d}xYz"
        if model == GEMINI_BLOCKED:
            prompt_tokens = gemini_prompt_tokens(request)
            blocked = {"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": [
                {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH",
                 "blocked": True}]},
                "usageMetadata": {"promptTokenCount": prompt_tokens,
                                  "totalTokenCount": prompt_tokens},
                "modelVersion": model, "responseId": response_id}
            if method == "generateContent":
                self._send(200, json.dumps(blocked).encode(),
                           content_type="application/json; charset=UTF-8",
                           request_id_header=None)
            else:
                self._start_stream("text/event-stream")
                self._chunk(f"data: {json.dumps(blocked)}\r\n\r\n".encode())
                self._end_stream()
            return
        candidates, usage = self._gemini_candidates(request, model)
        if method == "generateContent":
            answer = {"candidates": [
                {"content": {"parts": parts, "role": "model"}, "finishReason": finish,
                 "index": index} for index, (parts, finish) in enumerate(candidates)],
                "usageMetadata": usage, "modelVersion": model, "responseId": response_id}
            self._send(200, json.dumps(answer, indent=2).encode(),
                       content_type="application/json; charset=UTF-8", request_id_header=None)
            return

        events = _gemini_stream_events(candidates, usage, model, response_id)
        if query.get("alt") != "sse":
            # Without alt=sse Gemini streams one JSON array, not SSE.
            self._send(200, json.dumps(events).encode(),
                       content_type="application/json; charset=UTF-8", request_id_header=None)
            return
        frames = [f"data: {json.dumps(e, separators=(',', ':'))}\r\n\r\n".encode()
                  for e in events]
        self._start_stream("text/event-stream")
        if model == GEMINI_ERROR_MID_STREAM:
            error = {"error": {"code": 503, "message": GEMINI_OVERLOADED_MESSAGE,
                               "status": "UNAVAILABLE"}}
            frames = frames[:1] + [f"data: {json.dumps(error)}\r\n\r\n".encode()]
        if model == GEMINI_CUT_STREAM:
            for frame in frames[:2]:
                self._chunk(frame)
            self._drop_connection()
            return
        if model == GEMINI_HANG:
            self._chunk(frames[0])
            if self._hold_until_dropped(model):
                return
            frames = frames[1:]
        for frame in frames:
            self._chunk(frame)
        self._end_stream()

    def _gemini_candidates(self, request: dict[str, Any], model: str
                           ) -> tuple[list[tuple[list[dict[str, Any]], str]], dict[str, Any]]:
        """The answer to a valid request: (parts, finishReason) per candidate,
        and the `usageMetadata`."""
        contents = request["contents"]
        config = _field(request, "generationConfig") or {}
        last = contents[-1]
        results = [p["functionResponse"] if "functionResponse" in p
                   else p["function_response"]
                   for p in last.get("parts", [])
                   if "functionResponse" in p or "function_response" in p]
        declarations = [d for tool in request.get("tools") or []
                        for d in _field(tool, "functionDeclarations") or []]
        calling = _field(_field(request, "toolConfig") or {}, "functionCallingConfig") or {}
        mode = calling.get("mode") or "AUTO"
        finish = "STOP"
        parts: list[dict[str, Any]]
        if results:
            parts = [{"text": f"The tool said: {_function_result_text(results[-1])}"}]
        elif declarations and mode != "NONE":
            allowed = _field(calling, "allowedFunctionNames") or []
            callable_ = [d for d in declarations if d["name"] in allowed] \
                if mode == "ANY" and allowed else declarations
            chosen = callable_ if PARALLEL_TRIGGER in _gemini_user_text(last) \
                else callable_[:1]
            parts = []
            for declaration in chosen:
                schema = (_field(declaration, "parametersJsonSchema")
                          or declaration.get("parameters") or {"type": "object"})
                args = _fit(_lower_types(schema))
                part: dict[str, Any] = {"functionCall": {"name": declaration["name"],
                                                         "args": args}}
                if not parts:  # parallel calls: only the first part is signed
                    part["thoughtSignature"] = self.mock.issue_thought_signature(
                        declaration["name"], args)
                parts.append(part)
        else:
            if _field(config, "responseMimeType") == "application/json":
                schema = (_field(config, "responseJsonSchema")
                          or config.get("_responseJsonSchema")
                          or _field(config, "responseSchema"))
                text = (json.dumps(_fit(_lower_types(schema))) if schema else
                        json.dumps({"answer": f"You said: {_gemini_user_text(last)}",
                                    "ok": True}))
            else:
                text = f"Hello from the mock upstream! You said: {_gemini_user_text(last)}"
                hits = [(text.find(s), s) for s in _field(config, "stopSequences") or []
                        if s and s in text]
                if hits:
                    text = text[:min(hits)[0]]  # Gemini still says STOP
                words = text.split(" ")
                limit = _field(config, "maxOutputTokens")
                if isinstance(limit, int) and len(words) > limit:
                    text, finish = " ".join(words[:limit]), "MAX_TOKENS"
            parts = [{"text": text}]
        count = _field(config, "candidateCount") or 1
        output_tokens = sum(
            len(p["text"].split()) if "text" in p else len(json.dumps(p["functionCall"]).split())
            for p in parts) * count
        prompt_tokens = gemini_prompt_tokens(request)
        usage = {"promptTokenCount": prompt_tokens,
                 "candidatesTokenCount": output_tokens,
                 "totalTokenCount": prompt_tokens + output_tokens + GEMINI_THOUGHTS_TOKENS,
                 "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt_tokens}],
                 "thoughtsTokenCount": GEMINI_THOUGHTS_TOKENS}
        return [(parts, finish)] * count, usage

    # -- Bedrock ----------------------------------------------------------------

    def _bedrock_error(self, status: int, error_type: str, message: str,
                       namespace: str = "com.amazon.bedrock") -> None:
        """An AWS JSON error: the type in `x-amzn-ErrorType`, `{"message"}` in the body."""
        self._send(status, json.dumps({"message": message}).encode(), {
            "x-amzn-ErrorType": f"{error_type}:http://internal.amazon.com/coral/{namespace}/",
            "x-amzn-RequestId": str(uuid.uuid4()),
        }, request_id_header=None)

    def _bedrock(self, received: Received) -> None:
        """`POST /model/{modelId}/converse` and `/converse-stream`: the
        signature (or Bedrock API key) verified, the body checked, and the
        answer as JSON or as AWS's binary event stream."""
        url = urlsplit(self.path)
        segments = url.path.split("/")
        if len(segments) != 4 or segments[3] not in ("converse", "converse-stream"):
            self._bedrock_error(404, "UnknownOperationException", "Unknown operation",
                                "com.amazon.coral.service")
            return
        stream = segments[3] == "converse-stream"
        model = unquote(segments[2])
        received.auth = check_bedrock_auth(self.command, url.path, url.query,
                                           received.header_lines, received.raw_body)
        if not received.auth.ok:
            self._bedrock_error(received.auth.status, received.auth.error_type or "",
                                received.auth.message or "", "com.amazon.coral.service")
            return
        if model not in BEDROCK_MODELS:
            self._bedrock_error(400, "ValidationException",
                                "The provided model identifier is invalid.")
            return
        request = received.body
        if not isinstance(request, dict):
            self._bedrock_error(400, "SerializationException",
                                "Start of structure or map found where not expected.",
                                "com.amazon.coral.service")
            return
        problem = converse_problem(request, model)
        if problem is not None:
            self._bedrock_error(400, "ValidationException", problem)
            return
        if model == BEDROCK_SLOW:
            self.mock.stopping.wait(SLOW_S)
        if model == BEDROCK_THROTTLED:
            self._bedrock_error(429, "ThrottlingException", BEDROCK_THROTTLED_MESSAGE)
            return
        if model == BEDROCK_UNAVAILABLE:
            self._bedrock_error(503, "ServiceUnavailableException",
                                BEDROCK_UNAVAILABLE_MESSAGE)
            return

        content, stop_reason = self._converse_content(request, model)
        input_tokens = converse_input_tokens(request)
        output_tokens = converse_output_tokens(content)
        usage = {"inputTokens": input_tokens, "outputTokens": output_tokens,
                 "totalTokens": input_tokens + output_tokens}
        metrics = {"latencyMs": 321}
        headers = {"x-amzn-RequestId": str(uuid.uuid4())}
        if not stream:
            answer = {"output": {"message": {"role": "assistant", "content": content}},
                      "stopReason": stop_reason, "usage": usage, "metrics": metrics}
            self._send(200, json.dumps(answer).encode(), headers, request_id_header=None)
            return

        frames = converse_stream_frames(content, stop_reason, usage, metrics)
        self._start_stream("application/vnd.amazon.eventstream", headers)
        if model == BEDROCK_STREAM_THROTTLED:
            # Throttled before the first token: only the exception.
            self._write_frames([eventstream_exception(
                "throttlingException", {"message": BEDROCK_THROTTLED_MESSAGE})])
            self._end_stream()
            return
        # messageStart, then the first delta: the first token.
        first = 2
        if model == BEDROCK_STREAM_EXCEPTION:
            frames = frames[:first] + [eventstream_exception("modelStreamErrorException", {
                "message": BEDROCK_STREAM_ERROR_MESSAGE, "originalStatusCode": 500,
                "originalMessage": "Internal server error"})]
        if model == BEDROCK_CUT_STREAM:
            # Two deltas, then half of the third frame, and the line goes dead.
            self._write_frames(frames[:first + 1])
            self._chunk(frames[first + 1][: len(frames[first + 1]) // 2])
            self._drop_connection()
            return
        if model == BEDROCK_HANG:
            self._write_frames(frames[:first])
            if self._hold_until_dropped(model):
                return
            frames = frames[first:]
        self._write_frames(frames)
        self._end_stream()

    def _write_frames(self, frames: list[bytes]) -> None:
        """Event-stream frames, in 29-byte chunks, so that frames straddle
        the reads of whoever decodes them."""
        data = b"".join(frames)
        for at in range(0, len(data), 29):
            self._chunk(data[at:at + 29])

    def _converse_content(self, request: dict[str, Any],
                          model: str) -> tuple[list[dict[str, Any]], str]:
        """The answer's content blocks and `stopReason` for a valid request."""
        messages = request["messages"]
        last = messages[-1]
        results = [b["toolResult"] for b in last["content"]
                   if last["role"] == "user" and "toolResult" in b]
        tool_config = request.get("toolConfig") or {}
        tools = [t["toolSpec"] for t in tool_config.get("tools") or [] if "toolSpec" in t]
        choice = tool_config.get("toolChoice") or {"auto": {}}
        if results:
            return [{"text": f"The tool said: {_tool_result_text(results[-1])}"}], "end_turn"
        if model == BEDROCK_GUARDRAIL:
            return [{"text": BEDROCK_GUARDRAIL_TEXT}], "guardrail_intervened"
        user_text = " ".join(b["text"] for b in last["content"] if "text" in b)
        if tools:
            chosen = ([next(t for t in tools if t["name"] == choice["tool"]["name"])]
                      if "tool" in choice else
                      tools if PARALLEL_TRIGGER in user_text else tools[:1])
            uses = [{"toolUse": {
                "toolUseId": _tool_use_id(self.mock.next_id()), "name": tool["name"],
                "input": _fit(_lower_types(tool["inputSchema"]["json"]))}} for tool in chosen]
            preamble = [{"text": TOOL_PREAMBLE}] if "auto" in choice else []
            return [*preamble, *uses], "tool_use"
        config = request.get("inferenceConfig") or {}
        text = f"Hello from the mock upstream! You said: {user_text}"
        stop_reason = "end_turn"
        hits = [(text.find(s), s) for s in config.get("stopSequences") or [] if s in text]
        if hits:
            text, stop_reason = text[:min(hits)[0]], "stop_sequence"
        words = text.split(" ")
        limit = config.get("maxTokens")
        if isinstance(limit, int) and len(words) > limit:
            text, stop_reason = " ".join(words[:limit]), "max_tokens"
        return [{"text": text}], stop_reason


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


def _messages_problem(request: dict[str, Any], betas: set[str] | None = None) -> str | None:
    """Why the real Messages API would answer this request 400, or None.
    `betas`: the `anthropic-beta` values sent, which admit their fields."""
    admitted = MESSAGES_FIELDS.union(*(MESSAGES_BETA_FIELDS.get(b, ()) for b in betas or ()))
    for name in request:
        if name not in admitted:
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
    thinking = request.get("thinking")
    if thinking is not None:
        kind = thinking.get("type") if isinstance(thinking, dict) else None
        if kind not in ("enabled", "disabled", "adaptive"):
            return ("thinking: Input tag does not match any of the expected tags: "
                    "'enabled', 'disabled', 'adaptive'")
        budget = thinking.get("budget_tokens")
        if kind == "enabled" and not (isinstance(budget, int) and 1024 <= budget < max_tokens):
            return ("thinking.enabled.budget_tokens: Input should be greater than or equal to "
                    "1024 and less than max_tokens")
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
            if kind == "thinking" and not isinstance(block.get("signature"), str):
                return f"{where}.thinking.signature: Field required"
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


def _prefill(messages: list[Any]) -> str | None:
    """The text of a last `assistant` message (a prefill to continue), if
    the messages end with one that has text and no tool calls."""
    last = messages[-1] if messages else None
    if not isinstance(last, dict) or last.get("role") != "assistant" or last.get("tool_calls"):
        return None
    text = _text(last.get("content"))
    return text or None


def _continued_pieces(text: str) -> list[str]:
    """The rest of a continued answer in word-sized deltas, each with the
    whitespace before its word, whose concatenation is `text`."""
    pieces = re.findall(r"\s*\S+", text)
    tail = text[len("".join(pieces)):]
    return pieces + [tail] if tail else pieces


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


# -- Gemini: what the API refuses, and how it counts ---------------------------


def _snake(name: str) -> str:
    """`generationConfig` -> `generation_config` (Google's JSON takes both)."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def _both(*names: str) -> frozenset[str]:
    return frozenset(n for name in names for n in (name, _snake(name)))


def _field(obj: Any, name: str) -> Any:
    """`obj[name]`, or its snake_case spelling, or None."""
    if not isinstance(obj, dict):
        return None
    value = obj.get(name)
    return value if value is not None else obj.get(_snake(name))


_GEMINI_FIELDS = _both("contents", "tools", "toolConfig", "safetySettings",
                       "systemInstruction", "generationConfig", "cachedContent")
_GENERATION_CONFIG_FIELDS = _both(
    "stopSequences", "responseMimeType", "responseSchema", "responseJsonSchema",
    "_responseJsonSchema", "responseModalities", "candidateCount", "maxOutputTokens",
    "temperature", "topP", "topK", "seed", "presencePenalty", "frequencyPenalty",
    "responseLogprobs", "logprobs", "enableEnhancedCivicAnswers", "speechConfig",
    "thinkingConfig", "mediaResolution", "imageConfig")
_CONTENT_FIELDS = _both("role", "parts")
_PART_DATA = ("text", "inlineData", "functionCall", "functionResponse", "fileData",
              "executableCode", "codeExecutionResult")
_PART_FIELDS = _both(*_PART_DATA, "thought", "thoughtSignature", "videoMetadata",
                     "partMetadata")
_TOOL_FIELDS = _both("functionDeclarations", "googleSearchRetrieval", "codeExecution",
                     "googleSearch", "urlContext", "computerUse", "fileSearch", "googleMaps")
_DECLARATION_FIELDS = _both("name", "description", "behavior", "parameters",
                            "parametersJsonSchema", "response", "responseJsonSchema")
#: Gemini's `Schema` (a subset of OpenAPI 3.0): no `additionalProperties`,
#: `$ref`, `const`, ... (JSON Schema goes in the `...JsonSchema` fields).
_SCHEMA_FIELDS = _both(
    "type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems",
    "properties", "required", "minProperties", "maxProperties", "minLength", "maxLength",
    "pattern", "example", "anyOf", "propertyOrdering", "default", "items", "minimum",
    "maximum")
_SCHEMA_TYPES = {"TYPE_UNSPECIFIED", "STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY",
                 "OBJECT", "NULL"}
_FUNCTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]{0,63}")
_CALLING_MODES = {"MODE_UNSPECIFIED", "AUTO", "ANY", "NONE", "VALIDATED"}


def _unknown(name: str, where: str = "") -> str:
    at = f" at '{where}'" if where else ""
    return f'Invalid JSON payload received. Unknown name "{name}"{at}: Cannot find field.'


def _schema_problem(schema: Any, where: str) -> str | None:
    """Why Gemini's `Schema` message cannot hold `schema`, or None."""
    if not isinstance(schema, dict):
        return f"Invalid value at '{where}' (Schema): expected an object"
    for name in schema:
        if name not in _SCHEMA_FIELDS:
            return _unknown(name, where)
    kind = schema.get("type")
    if isinstance(kind, list):
        return (f"Invalid JSON payload received. Proto field is not repeating, cannot start "
                f"list. at '{where}.type'")
    if kind is not None and (not isinstance(kind, str) or kind.upper() not in _SCHEMA_TYPES):
        return (f"Invalid value at '{where}.type' "
                f"(type.googleapis.com/google.ai.generativelanguage.v1beta.Type), {kind!r}")
    properties = schema.get("properties")
    if properties is not None:
        if not isinstance(properties, dict):
            return f"Invalid value at '{where}.properties': expected an object"
        for i, sub in enumerate(properties.values()):
            problem = _schema_problem(sub, f"{where}.properties[{i}].value")
            if problem:
                return problem
    if "items" in schema:
        problem = _schema_problem(schema["items"], f"{where}.items")
        if problem:
            return problem
    for i, sub in enumerate(_field(schema, "anyOf") or []):
        problem = _schema_problem(sub, f"{where}.any_of[{i}]")
        if problem:
            return problem
    return None


def _is_function_response(content: dict[str, Any]) -> bool:
    return any("functionResponse" in p or "function_response" in p
               for p in content.get("parts", []))


def _function_calls(content: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in content.get("parts", []) if "functionCall" in p or "function_call" in p]


def gemini_problem(request: dict[str, Any], model: str,
                   signatures: dict[str, str]) -> str | None:
    """Why Gemini would answer this `generateContent` body 400
    (`INVALID_ARGUMENT`), in its words, or None. `signatures`: the thought
    signatures handed out so far (signature -> function name)."""
    for name in request:
        if name not in _GEMINI_FIELDS:
            return _unknown(name)

    config = _field(request, "generationConfig")
    if config is not None:
        if not isinstance(config, dict):
            return "Invalid value at 'generation_config': expected an object"
        for name in config:
            if name not in _GENERATION_CONFIG_FIELDS:
                return _unknown(name, "generation_config")
        temperature = _field(config, "temperature")
        if temperature is not None and not (isinstance(temperature, (int, float))
                                            and 0 <= temperature <= 2):
            return ("* GenerateContentRequest.generation_config.temperature: temperature must "
                    "be in the range [0.0, 2.0]")
        top_p = _field(config, "topP")
        if top_p is not None and not (isinstance(top_p, (int, float)) and 0 <= top_p <= 1):
            return "* GenerateContentRequest.generation_config.top_p: top_p must be in [0, 1]"
        limit = _field(config, "maxOutputTokens")
        if limit is not None and not (isinstance(limit, int) and not isinstance(limit, bool)
                                      and limit >= 1):
            return ("* GenerateContentRequest.generation_config.max_output_tokens: "
                    "max_output_tokens must be positive")
        count = _field(config, "candidateCount")
        if count is not None and not (isinstance(count, int) and 1 <= count <= 8):
            return ("* GenerateContentRequest.generation_config.candidate_count: "
                    "candidate_count must be between 1 and 8")
        stops = _field(config, "stopSequences")
        if stops is not None and not (isinstance(stops, list) and len(stops) <= 5
                                      and all(isinstance(s, str) for s in stops)):
            return ("* GenerateContentRequest.generation_config.stop_sequences: at most 5 "
                    "stop sequences are allowed")
        schema = _field(config, "responseSchema")
        json_schema = _field(config, "responseJsonSchema") or config.get("_responseJsonSchema")
        if schema is not None and json_schema is not None:
            return ("* GenerateContentRequest.generation_config: response_schema and "
                    "response_json_schema cannot both be set")
        if (schema is not None or json_schema is not None) and \
                _field(config, "responseMimeType") != "application/json":
            return ("* GenerateContentRequest.generation_config.response_mime_type: "
                    "response_mime_type must be application/json when a response schema "
                    "is set")
        if schema is not None:
            problem = _schema_problem(schema, "generation_config.response_schema")
            if problem:
                return problem

    system = _field(request, "systemInstruction")
    if system is not None:
        if not isinstance(system, dict):
            return "Invalid value at 'system_instruction' (Content): expected an object"
        for name in system:
            if name not in _CONTENT_FIELDS:
                return _unknown(name, "system_instruction")
        parts = system.get("parts")
        if not isinstance(parts, list) or not parts:
            return "* GenerateContentRequest.system_instruction.parts: must not be empty"
        for j, part in enumerate(parts):
            if not isinstance(part, dict) or not isinstance(part.get("text"), str) \
                    or not part["text"] or len(part) != 1:
                return (f"* GenerateContentRequest.system_instruction.parts[{j}]: only "
                        "non-empty text parts are supported in a system instruction")

    declared: list[str] = []
    tools = request.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            return "Invalid value at 'tools': expected a list"
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict):
                return f"Invalid value at 'tools[{i}]': expected an object"
            for name in tool:
                if name not in _TOOL_FIELDS:
                    return _unknown(name, f"tools[{i}]")
            for k, declaration in enumerate(_field(tool, "functionDeclarations") or []):
                where = f"tools[{i}].function_declarations[{k}]"
                if not isinstance(declaration, dict):
                    return f"Invalid value at '{where}': expected an object"
                for name in declaration:
                    if name not in _DECLARATION_FIELDS:
                        return _unknown(name, where)
                name = declaration.get("name")
                if not isinstance(name, str) or not _FUNCTION_NAME.fullmatch(name):
                    return (f"* GenerateContentRequest.{where}.name: Invalid function name. "
                            "Must start with a letter or an underscore. Must be alphameric "
                            "(a-z, A-Z, 0-9), underscores (_), dots (.), colons (:), or "
                            "dashes (-), with a maximum length of 64.")
                if "parameters" in declaration and \
                        _field(declaration, "parametersJsonSchema") is not None:
                    return (f"* GenerateContentRequest.{where}: parameters and "
                            "parameters_json_schema cannot both be set")
                if "parameters" in declaration:
                    problem = _schema_problem(declaration["parameters"], f"{where}.parameters")
                    if problem:
                        return problem
                declared.append(name)
    tool_config = _field(request, "toolConfig")
    if tool_config is not None:
        calling = _field(tool_config, "functionCallingConfig") or {}
        mode = calling.get("mode")
        if mode is not None and mode not in _CALLING_MODES:
            return ("Invalid value at 'tool_config.function_calling_config.mode' "
                    "(type.googleapis.com/google.ai.generativelanguage.v1beta."
                    f"FunctionCallingConfig.Mode), {json.dumps(mode)}")
        allowed = _field(calling, "allowedFunctionNames")
        if allowed:
            if mode not in ("ANY", "VALIDATED"):
                return ("* GenerateContentRequest.tool_config.function_calling_config."
                        "allowed_function_names: allowed_function_names can only be set "
                        "when mode is ANY or VALIDATED")
            for name in allowed:
                if name not in declared:
                    return ("* GenerateContentRequest.tool_config.function_calling_config."
                            f"allowed_function_names: function {name!r} is not declared")

    contents = _field(request, "contents")
    if not isinstance(contents, list) or not contents:
        return "* GenerateContentRequest.contents: contents is not specified"
    for i, content in enumerate(contents):
        if not isinstance(content, dict):
            return f"Invalid value at 'contents[{i}]' (Content): expected an object"
        for name in content:
            if name not in _CONTENT_FIELDS:
                return _unknown(name, f"contents[{i}]")
        if content.get("role", "user") not in ("user", "model"):
            return "Please use a valid role: user, model."
        parts = content.get("parts")
        if not isinstance(parts, list) or not parts:
            return f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty."
        for j, part in enumerate(parts):
            where = f"contents[{i}].parts[{j}]"
            if not isinstance(part, dict):
                return f"Invalid value at '{where}' (Part): expected an object"
            for name in part:
                if name not in _PART_FIELDS:
                    return _unknown(name, where)
            # An empty string is proto3's "unset".
            data = [d for d in _PART_DATA
                    if _field(part, d) not in (None, "") or (d == "text" and part.get("text"))]
            if len(data) > 1:
                return (f"Invalid JSON payload received. Oneof field 'data' is already set. "
                        f"Cannot set '{data[1]}' at '{where}'")
            if not data:
                return (f"* GenerateContentRequest.{where}.data: required oneof field 'data' "
                        "must have one initialized field")
            kind = data[0]
            if kind == "text" and not isinstance(part["text"], str):
                return f"Invalid value at '{where}.text' (TYPE_STRING)"
            if kind == "inlineData":
                blob = _field(part, "inlineData")
                if not isinstance(blob, dict) or not _field(blob, "mimeType"):
                    return f"* GenerateContentRequest.{where}.inline_data.mime_type: required"
                encoded = blob.get("data")
                try:
                    if not isinstance(encoded, str) or not encoded:
                        raise ValueError
                    base64.b64decode(encoded.replace("-", "+").replace("_", "/"),
                                     validate=True)
                except (ValueError, binascii.Error):
                    return (f"Invalid value at '{where}.inline_data.data' (TYPE_BYTES), "
                            f"Base64 decoding failed for {json.dumps(str(encoded)[:40])}")
            if kind == "functionCall":
                call = _field(part, "functionCall")
                if not isinstance(call, dict) or not isinstance(call.get("name"), str) \
                        or not call["name"]:
                    return f"* GenerateContentRequest.{where}.function_call.name: name is required"
                if "args" in call and not isinstance(call["args"], dict):
                    return (f"Invalid value at '{where}.function_call.args' "
                            "(type.googleapis.com/google.protobuf.Struct)")
            if kind == "functionResponse":
                result = _field(part, "functionResponse")
                if not isinstance(result, dict) or not isinstance(result.get("name"), str) \
                        or not result["name"]:
                    return (f"* GenerateContentRequest.{where}.function_response.name: "
                            "name is required")
                if not isinstance(result.get("response"), dict):
                    return (f"Invalid value at '{where}.function_response.response' "
                            "(type.googleapis.com/google.protobuf.Struct), "
                            f"{json.dumps(result.get('response'))}")
            signature = _field(part, "thoughtSignature")
            if signature is not None and signature not in GEMINI_BYPASS_SIGNATURES:
                issued = signatures.get(signature) if isinstance(signature, str) else None
                call = _field(part, "functionCall")
                if issued is None or (isinstance(call, dict) and call.get("name") != issued):
                    return f"Corrupted thought signature. at '{where}.thought_signature'"

    # Turn order: a call follows a user turn (or results), results follow the call.
    for i, content in enumerate(contents):
        previous = contents[i - 1] if i else None
        if _function_calls(content) and previous is not None and \
                previous.get("role", "user") != "user":
            return ("Please ensure that function call turn comes immediately after a user "
                    "turn or after a function response turn.")
        if _is_function_response(content):
            if previous is None or not _function_calls(previous):
                return ("Please ensure that function response turn comes immediately after "
                        "a function call turn.")
            given = [p for p in content["parts"]
                     if "functionResponse" in p or "function_response" in p]
            if len(given) != len(_function_calls(previous)):
                return ("Please ensure that the number of function response parts is equal "
                        "to the number of function call parts of the function call turn.")

    # Gemini 3: every step of the current turn must send its signature back.
    if model.startswith("gemini-3"):
        start = max((i for i, c in enumerate(contents)
                     if c.get("role", "user") == "user" and not _is_function_response(c)),
                    default=-1) + 1
        for i in range(start, len(contents)):
            calls = _function_calls(contents[i])
            if calls and not _field(calls[0], "thoughtSignature"):
                name = _field(calls[0], "functionCall").get("name")
                return ("Function call is missing a thought_signature in functionCall parts. "
                        "This is required for tools to work correctly, and missing "
                        "thought_signature may lead to degraded model performance. "
                        f"Additional data, function call `default_api:{name}` , position "
                        f"{i + 1}. Please refer to "
                        "https://ai.google.dev/gemini-api/docs/thought-signatures for more "
                        "details.")
    return None


def _lower_types(schema: Any) -> Any:
    """A schema with Gemini's upper-case `type` names lower-cased, for `_fit`."""
    if isinstance(schema, dict):
        return {k: (v.lower() if k == "type" and isinstance(v, str) else _lower_types(v))
                for k, v in schema.items()}
    if isinstance(schema, list):
        return [_lower_types(v) for v in schema]
    return schema


def _gemini_user_text(content: dict[str, Any]) -> str:
    return "".join(p.get("text", "") for p in content.get("parts", []) if isinstance(p, dict))


def _function_result_text(result: dict[str, Any]) -> str:
    """What a `functionResponse.response` said: its one string value, if it
    has exactly one (`{"result": "12 degrees"}`), else its JSON."""
    response = result.get("response") or {}
    values = list(response.values())
    if len(values) == 1 and isinstance(values[0], str):
        return values[0]
    return json.dumps(response)


def gemini_prompt_tokens(request: dict[str, Any]) -> int:
    """The `promptTokenCount` the mock reports: words of the system
    instruction and of every part (calls and results as JSON), plus one."""
    words = len(_gemini_user_text(_field(request, "systemInstruction") or {}).split())
    for content in request.get("contents") or []:
        for part in content.get("parts", []):
            if "text" in part:
                words += len(str(part["text"]).split())
            for kind in ("functionCall", "functionResponse"):
                if _field(part, kind) is not None:
                    words += len(json.dumps(_field(part, kind)).split())
    return words + 1


def _gemini_stream_events(candidates: list[tuple[list[dict[str, Any]], str]],
                          usage: dict[str, Any], model: str, response_id: str
                          ) -> list[dict[str, Any]]:
    """`streamGenerateContent` events for an answer: text in word-sized
    pieces (a `functionCall` part whole, as Gemini sends it), every event
    with the usage so far, `finishReason` on the last."""
    parts, finish = candidates[0]
    pieces: list[dict[str, Any]] = []
    for part in parts:
        if "text" in part:
            pieces.extend({"text": piece} for piece in _pieces(part["text"]))
        else:
            pieces.append(part)
    events = []
    emitted = 0
    per_candidate = usage["candidatesTokenCount"] // max(len(candidates), 1)
    for n, piece in enumerate(pieces):
        last = n == len(pieces) - 1
        emitted = per_candidate if last else min(per_candidate, emitted + 1)
        output = emitted * len(candidates)
        event_candidates = []
        for index in range(len(candidates)):
            candidate: dict[str, Any] = {"content": {"parts": [piece], "role": "model"},
                                         "index": index}
            if last:
                candidate["finishReason"] = finish
            event_candidates.append(candidate)
        events.append({
            "candidates": event_candidates,
            "usageMetadata": {
                "promptTokenCount": usage["promptTokenCount"],
                "candidatesTokenCount": output,
                "totalTokenCount": usage["promptTokenCount"] + output + GEMINI_THOUGHTS_TOKENS,
                "promptTokensDetails": usage["promptTokensDetails"],
                "thoughtsTokenCount": GEMINI_THOUGHTS_TOKENS},
            "modelVersion": model,
            "responseId": response_id,
        })
    return events


# -- Bedrock: SigV4, checked independently of the router's signer ---------------


@dataclass
class AuthCheck:
    """How a Bedrock request authenticated, and the mock's verdict."""

    scheme: str | None  # "sigv4", "bearer", or None (no Authorization header)
    ok: bool
    status: int = 403
    error_type: str | None = None  # x-amzn-ErrorType when refused
    message: str | None = None
    access_key_id: str | None = None
    date: str | None = None  # the scope's YYYYMMDD
    region: str | None = None
    service: str | None = None
    signed_headers: list[str] = field(default_factory=list)
    canonical_request: str | None = None
    string_to_sign: str | None = None


def sigv4_uri_encode(text: str) -> str:
    """SigV4's URI-encode: every byte but `A-Za-z0-9-._~` as `%XX`, upper-case."""
    return quote(text, safe="-_.~")


def sigv4_canonical_uri(path: str) -> str:
    """The canonical URI of a path as it appears in the request line: each
    segment URI-encoded (again: for every service but S3 the wire path is
    encoded a second time, so `%3A` becomes `%253A`)."""
    return "/".join(sigv4_uri_encode(segment) for segment in (path or "/").split("/"))


def sigv4_canonical_query(query: str) -> str:
    pairs = sorted((sigv4_uri_encode(k), sigv4_uri_encode(v))
                   for k, v in parse_qsl(query, keep_blank_values=True))
    return "&".join(f"{k}={v}" for k, v in pairs)


def sigv4_canonical_headers(header_lines: list[tuple[str, str]],
                            signed: list[str]) -> str | None:
    """`name:value\\n` for each signed header: values trimmed, inner runs of
    spaces collapsed, repeated headers joined with `,`. None when a signed
    header is absent from the request."""
    lines = []
    for name in signed:
        values = [" ".join(v.strip().split()) for n, v in header_lines if n.lower() == name]
        if not values:
            return None
        lines.append(f"{name}:{','.join(values)}\n")
    return "".join(lines)


def sigv4_signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = f"AWS4{secret}".encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def sigv4_signature(secret: str, amz_date: str, scope: str, canonical_request: str) -> tuple[
        str, str]:
    """(the string to sign, the hex signature) for a canonical request."""
    date, region, service, _ = scope.split("/")
    string_to_sign = "\n".join([
        "AWS4-HMAC-SHA256", amz_date, scope,
        hashlib.sha256(canonical_request.encode()).hexdigest()])
    key = sigv4_signing_key(secret, date, region, service)
    return string_to_sign, hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def sigv4_canonical_request(method: str, path: str, query: str,
                            header_lines: list[tuple[str, str]], signed: list[str],
                            body: bytes) -> str | None:
    headers = sigv4_canonical_headers(header_lines, signed)
    if headers is None:
        return None
    return "\n".join([method, sigv4_canonical_uri(path), sigv4_canonical_query(query),
                      headers, ";".join(signed), hashlib.sha256(body).hexdigest()])


def check_bedrock_auth(method: str, path: str, query: str, header_lines: list[tuple[str, str]],
                       body: bytes, now: datetime | None = None) -> AuthCheck:
    """Verifies a Bedrock request as AWS does: a Bedrock API key (Bearer), or
    a SigV4 `Authorization` whose signature is recomputed here from the
    request as received, with the secret of :data:`BEDROCK_ACCESS_KEY_ID`."""
    headers = {n.lower(): v for n, v in header_lines}
    authorization = headers.get("authorization", "").strip()
    if not authorization:
        return AuthCheck(None, False, error_type="MissingAuthenticationTokenException",
                         message="Missing Authentication Token")
    if authorization.startswith("Bearer "):
        if authorization[len("Bearer "):] == BEDROCK_API_KEY:
            return AuthCheck("bearer", True)
        return AuthCheck("bearer", False, error_type="UnrecognizedClientException",
                         message="Invalid API Key format: Must start with pre-defined prefix")
    algorithm, _, rest = authorization.partition(" ")
    if algorithm != "AWS4-HMAC-SHA256":
        return AuthCheck("sigv4", False, error_type="IncompleteSignatureException",
                         message=f"Unsupported AWS 'algorithm': '{algorithm}'")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        name, _, value = part.strip().partition("=")
        fields[name] = value
    missing = [f"Authorization header requires '{n}' parameter."
               for n in ("Credential", "Signature", "SignedHeaders") if not fields.get(n)]
    if missing:
        return AuthCheck("sigv4", False, error_type="IncompleteSignatureException",
                         message=" ".join(missing) + f" Authorization={authorization}")
    check = AuthCheck("sigv4", False, error_type="IncompleteSignatureException")
    scope_parts = fields["Credential"].split("/")
    if len(scope_parts) != 5:
        check.message = f"Credential should have 5 parts: {fields['Credential']!r}"
        return check
    check.access_key_id, check.date, check.region, check.service, terminator = scope_parts
    check.signed_headers = fields["SignedHeaders"].split(";")
    if check.service != "bedrock":
        check.message = "Credential should be scoped to correct service: 'bedrock'. "
        return check
    if terminator != "aws4_request":
        check.message = ("Credential should be scoped with a valid terminator: "
                         f"'aws4_request', not '{terminator}'. ")
        return check
    if "host" not in check.signed_headers:
        check.message = "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
        return check
    amz_date = headers.get("x-amz-date")
    if not amz_date:
        check.message = ("Authorization header requires existence of either a 'X-Amz-Date' or "
                         f"a 'Date' header. Authorization={authorization}")
        return check
    try:
        when = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        check.message = f"Date must be in ISO-8601 'basic format'. Got '{amz_date}'."
        return check
    check.error_type = "InvalidSignatureException"
    if check.date != amz_date[:8]:
        check.message = ("Date in Credential scope does not match YYYYMMDD from ISO-8601 "
                         f"version of date from HTTP: '{check.date}' != '{amz_date[:8]}', "
                         f"from '{amz_date}'.")
        return check
    now = now or datetime.now(timezone.utc)
    stamp = "%Y%m%dT%H%M%SZ"
    if when < now - BEDROCK_CLOCK_SKEW:
        check.message = (f"Signature expired: {amz_date} is now earlier than "
                         f"{(now - BEDROCK_CLOCK_SKEW).strftime(stamp)} "
                         f"({now.strftime(stamp)} - 5 min.)")
        return check
    if when > now + BEDROCK_CLOCK_SKEW:
        check.message = (f"Signature not yet current: {amz_date} is still later than "
                         f"{(now + BEDROCK_CLOCK_SKEW).strftime(stamp)} "
                         f"({now.strftime(stamp)} + 5 min.)")
        return check
    if check.access_key_id != BEDROCK_ACCESS_KEY_ID or \
            headers.get("x-amz-security-token") != BEDROCK_SESSION_TOKEN:
        check.error_type = "UnrecognizedClientException"
        check.message = "The security token included in the request is invalid."
        return check
    canonical = sigv4_canonical_request(method, path, query, header_lines,
                                        check.signed_headers, body)
    if canonical is None:
        check.message = ("The request signature we calculated does not match the signature "
                         "you provided: a signed header is missing from the request.")
        return check
    scope = "/".join(scope_parts[1:])  # date/region/service/aws4_request
    string_to_sign, expected = sigv4_signature(BEDROCK_SECRET_ACCESS_KEY, amz_date, scope,
                                               canonical)
    check.canonical_request, check.string_to_sign = canonical, string_to_sign
    if not hmac.compare_digest(expected, fields["Signature"]):
        check.message = (
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method. Consult the service "
            "documentation for details.\n\nThe Canonical String for this request should have "
            f"been\n'{canonical}'\n\nThe String-to-Sign should have been\n'{string_to_sign}'\n")
        return check
    check.ok, check.status, check.error_type, check.message = True, 200, None, None
    return check


# -- Bedrock Converse: what it refuses, and how it answers ----------------------

_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_CONTENT_BLOCK_KEYS = {"text", "image", "document", "video", "audio", "toolUse", "toolResult",
                       "guardContent", "cachePoint", "reasoningContent", "citationsContent",
                       "searchResult"}
_TOOL_RESULT_BLOCK_KEYS = {"json", "text", "image", "document", "video", "searchResult"}
_IMAGE_FORMATS = {"png", "jpeg", "gif", "webp"}
#: Models that take neither `toolConfig` nor images.
_NO_TOOLS_NO_IMAGES = {BEDROCK_LLAMA}


def _constraint(value: Any, where: str, rule: str) -> str:
    """AWS's wording for a request that breaks a member constraint."""
    return (f"1 validation error detected: Value '{value}' at '{where}' failed to satisfy "
            f"constraint: {rule}")


def _name_problem(value: Any, where: str) -> str | None:
    """A toolUseId or tool name: 1 to 64 of `[a-zA-Z0-9_-]`, as Converse requires."""
    if isinstance(value, str) and len(value) > 64:
        return _constraint(value, where, "Member must have length less than or equal to 64")
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        return _constraint(value, where,
                           "Member must satisfy regular expression pattern: [a-zA-Z0-9_-]+")
    return None


def converse_problem(request: dict[str, Any], model: str) -> str | None:
    """Why Bedrock would answer this Converse body with a 400
    `ValidationException`, in its words, or None."""
    system = request.get("system")
    if system is not None:
        if not isinstance(system, list):
            return _constraint(system, "system", "Member must be a list")
        for i, block in enumerate(system):
            if not isinstance(block, dict) or len(block) != 1 or \
                    next(iter(block)) not in ("text", "guardContent", "cachePoint"):
                return (f"The SystemContentBlock at system.{i} must set exactly one of: "
                        "text, guardContent, cachePoint.")
            if "text" in block and not (isinstance(block["text"], str) and block["text"].strip()):
                return (f"The text field in the SystemContentBlock object at system.{i} is "
                        "blank. Add text to the text field, and try again.")

    config = request.get("inferenceConfig")
    if config is not None:
        if not isinstance(config, dict):
            return _constraint(config, "inferenceConfig", "Member must be a structure")
        limit = config.get("maxTokens")
        if limit is not None and not (isinstance(limit, int) and not isinstance(limit, bool)
                                      and limit >= 1):
            return _constraint(limit, "inferenceConfig.maxTokens",
                               "Member must have value greater than or equal to 1")
        for name in ("temperature", "topP"):
            value = config.get(name)
            if value is None:
                continue
            if not isinstance(value, (int, float)) or value < 0:
                return _constraint(value, f"inferenceConfig.{name}",
                                   "Member must have value greater than or equal to 0")
            if value > 1:
                return _constraint(value, f"inferenceConfig.{name}",
                                   "Member must have value less than or equal to 1")
        stops = config.get("stopSequences")
        if stops is not None and not (isinstance(stops, list) and all(
                isinstance(s, str) and s for s in stops)):
            return _constraint(stops, "inferenceConfig.stopSequences",
                               "Member must satisfy constraint: [Member must have length "
                               "greater than or equal to 1]")

    tool_config = request.get("toolConfig")
    tool_names: list[str] = []
    if tool_config is not None:
        if model in _NO_TOOLS_NO_IMAGES:
            return "This model doesn't support tool use."
        tools = tool_config.get("tools") if isinstance(tool_config, dict) else None
        if not isinstance(tools, list) or not tools:
            return _constraint(json.dumps(tools), "toolConfig.tools",
                               "Member must have length greater than or equal to 1")
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict) or len(tool) != 1 or \
                    next(iter(tool)) not in ("toolSpec", "cachePoint", "systemTool"):
                return f"The Tool at toolConfig.tools.{i} must set exactly one of: toolSpec, cachePoint, systemTool."
            spec = tool.get("toolSpec")
            if spec is None:
                continue
            name = spec.get("name") if isinstance(spec, dict) else None
            if not isinstance(name, str) or not _NAME.fullmatch(name):
                return _constraint(name, f"toolConfig.tools.{i}.member.toolSpec.name",
                                   "Member must satisfy regular expression pattern: "
                                   "[a-zA-Z0-9_-]+")
            if "description" in spec and not spec["description"]:
                return _constraint("", f"toolConfig.tools.{i}.member.toolSpec.description",
                                   "Member must have length greater than or equal to 1")
            schema = spec.get("inputSchema")
            if not isinstance(schema, dict) or list(schema) != ["json"] or \
                    not isinstance(schema["json"], dict):
                return (f"The inputSchema at toolConfig.tools.{i}.toolSpec must set json to "
                        "a JSON object.")
            if name in tool_names:
                return f"The toolConfig.tools field contains a duplicate tool name: {name}."
            tool_names.append(name)
        choice = tool_config.get("toolChoice")
        if choice is not None:
            if not isinstance(choice, dict) or len(choice) != 1 or \
                    next(iter(choice)) not in ("auto", "any", "tool"):
                return "The toolConfig.toolChoice field must set exactly one of: auto, any, tool."
            if "tool" in choice and (not isinstance(choice["tool"], dict)
                                     or choice["tool"].get("name") not in tool_names):
                return ("The tool specified in toolConfig.toolChoice.tool.name is not in "
                        "toolConfig.tools.")

    messages = request.get("messages")
    if not isinstance(messages, list) or not messages:
        return ("A conversation must start with a user message. Try again with a "
                "conversation that starts with a user message.")
    uses_tools = False
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("user", "assistant"):
            return _constraint(role, f"messages.{i + 1}.member.role",
                               "Member must satisfy enum value set: [user, assistant]")
        if i == 0 and role != "user":
            return ("A conversation must start with a user message. Try again with a "
                    "conversation that starts with a user message.")
        if i and messages[i - 1].get("role") == role:
            return ("A conversation must alternate between user and assistant roles. Make "
                    "sure the conversation alternates between user and assistant roles and "
                    "try again.")
        content = message.get("content")
        if not isinstance(content, list) or not content:
            return (f"The content field in the Message object at messages.{i} is empty. Add a "
                    "ContentBlock object to the content field and try again.")
        for j, block in enumerate(content):
            where = f"messages.{i}.content.{j}"
            keys = [k for k in (block if isinstance(block, dict) else {})
                    if k in _CONTENT_BLOCK_KEYS]
            if not isinstance(block, dict) or len(keys) != 1 or len(block) != 1:
                return (f"The ContentBlock object at {where} must set exactly one of: "
                        + ", ".join(sorted(_CONTENT_BLOCK_KEYS)) + ".")
            kind = keys[0]
            if kind == "text" and not (isinstance(block["text"], str) and block["text"].strip()):
                return (f"The text field in the ContentBlock object at {where} is blank. Add "
                        "text to the text field, and try again.")
            if kind == "image":
                if model in _NO_TOOLS_NO_IMAGES:
                    return ("This model doesn't support the image content block that you "
                            "provided. Try again with a supported content block.")
                image = block["image"] if isinstance(block["image"], dict) else {}
                if image.get("format") not in _IMAGE_FORMATS:
                    return _constraint(image.get("format"), f"{where}.member.image.format",
                                       "Member must satisfy enum value set: "
                                       "[gif, jpeg, png, webp]")
                source = image.get("source") if isinstance(image.get("source"), dict) else {}
                try:
                    if not isinstance(source.get("bytes"), str) or not source["bytes"]:
                        raise ValueError
                    base64.b64decode(source["bytes"], validate=True)
                except (ValueError, binascii.Error):
                    return f"The image at {where} is not valid base64-encoded bytes."
            if kind == "toolUse":
                uses_tools = True
                if role != "assistant":
                    return f"The toolUse block at {where} must be in an assistant message."
                use = block["toolUse"] if isinstance(block["toolUse"], dict) else {}
                for name in ("toolUseId", "name"):
                    problem = _name_problem(use.get(name), f"{where}.member.toolUse.{name}")
                    if problem:
                        return problem
                if "input" not in use:
                    return f"The toolUse block at {where} is missing its input."
            if kind == "toolResult":
                uses_tools = True
                if role != "user":
                    return f"The toolResult block at {where} must be in a user message."
                result = block["toolResult"] if isinstance(block["toolResult"], dict) else {}
                problem = _name_problem(result.get("toolUseId"),
                                        f"{where}.member.toolResult.toolUseId")
                if problem:
                    return problem
                if result.get("status") not in (None, "success", "error"):
                    return _constraint(result.get("status"), f"{where}.member.toolResult.status",
                                       "Member must satisfy enum value set: [success, error]")
                parts = result.get("content")
                if not isinstance(parts, list):
                    return f"The toolResult block at {where} is missing its content."
                for k, part in enumerate(parts):
                    if not isinstance(part, dict) or len(part) != 1 or \
                            next(iter(part)) not in _TOOL_RESULT_BLOCK_KEYS:
                        return (f"The ToolResultContentBlock at {where}.toolResult.content.{k} "
                                "must set exactly one of: "
                                + ", ".join(sorted(_TOOL_RESULT_BLOCK_KEYS)) + ".")
        # Each toolUse is answered by a toolResult in the very next (user) message.
        if role == "user":
            given = [b["toolResult"]["toolUseId"] for b in content if "toolResult" in b]
            before = messages[i - 1]["content"] if i else []
            asked = [b["toolUse"]["toolUseId"] for b in before if "toolUse" in b]
            if len(given) > len(asked):
                return (f"The number of toolResult blocks at messages.{i}.content exceeds the "
                        "number of toolUse blocks of previous turn.")
            missing = [t for t in asked if t not in given]
            if missing:
                return (f"Expected toolResult blocks at messages.{i}.content for the following "
                        f"Ids: {', '.join(missing)}")
    if uses_tools and tool_config is None:
        return ("The toolConfig field must be defined when using toolUse and toolResult "
                "content blocks.")
    return None


def _tool_use_id(n: int) -> str:
    """A toolUseId as Bedrock makes them: `tooluse_` and 22 URL-safe characters."""
    digest = base64.urlsafe_b64encode(hashlib.sha256(f"tooluse{n}".encode()).digest())
    return "tooluse_" + digest.decode()[:22]


def _tool_result_text(result: dict[str, Any]) -> str:
    """What a toolResult said: its text blocks, and its json blocks (a
    one-string object as that string, else as JSON)."""
    out = []
    for block in result.get("content") or []:
        if "text" in block:
            out.append(block["text"])
        elif "json" in block:
            value = block["json"]
            values = list(value.values()) if isinstance(value, dict) else []
            out.append(values[0] if len(values) == 1 and isinstance(values[0], str)
                       else json.dumps(value))
    return "".join(out)


def converse_input_tokens(request: dict[str, Any]) -> int:
    """The `inputTokens` the mock reports: words of the system prompt and of
    every block (tool inputs as JSON), plus one."""
    words = sum(len(b.get("text", "").split()) for b in request.get("system") or [])
    for message in request.get("messages") or []:
        for block in message.get("content") or []:
            if "text" in block:
                words += len(block["text"].split())
            elif "toolUse" in block:
                words += len(json.dumps(block["toolUse"].get("input")).split())
            elif "toolResult" in block:
                words += len(_tool_result_text(block["toolResult"]).split())
    return words + 1


def converse_output_tokens(content: list[dict[str, Any]]) -> int:
    return sum(len(b["text"].split()) if "text" in b
               else len(json.dumps(b["toolUse"]["input"]).split()) for b in content)


# -- AWS event streams (application/vnd.amazon.eventstream) ---------------------


def eventstream_frame(headers: list[tuple[str, str]], payload: bytes) -> bytes:
    """One frame: total length, headers length, CRC32 of those 8 bytes,
    the headers (all strings, type 7), the payload, CRC32 of all before."""
    encoded = b"".join(
        struct.pack(">B", len(name.encode())) + name.encode() + b"\x07"
        + struct.pack(">H", len(value.encode())) + value.encode()
        for name, value in headers)
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack(">II", total, len(encoded))
    message = prelude + struct.pack(">I", binascii.crc32(prelude)) + encoded + payload
    return message + struct.pack(">I", binascii.crc32(message))


_PADDING = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def eventstream_event(event_type: str, payload: dict[str, Any], n: int = 0) -> bytes:
    """A ConverseStream event, with the `p` padding field Bedrock adds (its
    length varies from event to event, as Bedrock's does)."""
    padded = {**payload, "p": _PADDING[: 5 + (n * 7) % 50]}
    return eventstream_frame([(":event-type", event_type),
                              (":content-type", "application/json"),
                              (":message-type", "event")],
                             json.dumps(padded, separators=(",", ":")).encode())


def eventstream_exception(exception_type: str, payload: dict[str, Any]) -> bytes:
    return eventstream_frame([(":exception-type", exception_type),
                              (":content-type", "application/json"),
                              (":message-type", "exception")],
                             json.dumps(payload).encode())


def converse_stream_frames(content: list[dict[str, Any]], stop_reason: str,
                           usage: dict[str, Any], metrics: dict[str, Any]) -> list[bytes]:
    """ConverseStream's events for an answer: `messageStart`; per block, a
    `contentBlockStart` (tool use only, as Bedrock does), deltas (text in
    word pieces, tool input in 6-character JSON fragments) and a
    `contentBlockStop`; `messageStop`; `metadata` with the usage."""
    frames = [eventstream_event("messageStart", {"role": "assistant"}, 0)]
    for index, block in enumerate(content):
        if "text" in block:
            deltas = [{"text": piece} for piece in _pieces(block["text"])]
        else:
            use = block["toolUse"]
            frames.append(eventstream_event("contentBlockStart", {
                "contentBlockIndex": index,
                "start": {"toolUse": {"toolUseId": use["toolUseId"], "name": use["name"]}}},
                len(frames)))
            arguments = json.dumps(use["input"], separators=(",", ":"))
            deltas = [{"toolUse": {"input": arguments[i:i + 6]}}
                      for i in range(0, len(arguments), 6)]
        frames.extend(eventstream_event("contentBlockDelta",
                                        {"contentBlockIndex": index, "delta": delta},
                                        len(frames) + k)
                      for k, delta in enumerate(deltas))
        frames.append(eventstream_event("contentBlockStop", {"contentBlockIndex": index},
                                        len(frames)))
    frames.append(eventstream_event("messageStop", {"stopReason": stop_reason}, len(frames)))
    frames.append(eventstream_event("metadata", {"usage": usage, "metrics": metrics},
                                    len(frames)))
    return frames
