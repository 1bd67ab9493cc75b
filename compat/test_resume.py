"""`models.<name>.resume` through the official OpenAI Python SDK (and, for
the Messages front door, Anthropic's).

A streamed chat completion whose first target breaks after its first token
(the connection cut between or in the middle of events, a stall past
`timeouts.idle`, an `{"error": ...}` event, a body that ends with neither a
`finish_reason` nor `[DONE]`) is continued on the next target whose upstream
can continue a prefill: the router sends the request again with the text so
far as a trailing assistant message, and splices the continuation into the
client's stream. The application must not be able to tell: the SDK raises
nothing, the text is exactly the unbroken answer, one `id`, one
`finish_reason`, one usage chunk when asked for, and the stream ends with
`[DONE]`. When nothing can continue it, the SDK raises `APIError` with the
router's message about the original break, never the continuation's refusal.

The router is `resume_router` in `conftest.py`: every `resume-*` model's
first target is the mock (`first`) serving a model that breaks on purpose,
and its second is the same mock (`second`, `prefill: assistant`) serving
`upstream-gpt`, whose chat handler continues a prefill as llama.cpp does
(see `mock_upstream.py`). The raw bytes the SDK read are kept by a tee on
the client's transport, so the tests also see what the SDK hides (`[DONE]`).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.error
import urllib.request
from typing import Any, Iterator

import httpx2 as httpx
import openai
import pytest

from conftest import (
    CLIENT_KEY,
    CLIENT_TIMEOUT_S,
    RESUME_IDLE_MS,
    Router,
    make_door_client,
)
from mock_upstream import (
    CHAT_ERROR_AT_ONCE,
    CHAT_ERROR_LATE,
    CHAT_ERROR_MESSAGE,
    CHAT_HANG,
    CHAT_NO_DONE,
    CHAT_NO_PREFILL,
    CHAT_TRUNCATED,
    HANG_S,
    NO_PREFILL_MESSAGE,
    TOOL_ARGUMENTS,
    MockUpstream,
    Received,
)

HELLO = [{"role": "user", "content": "ping from the resume suite"}]
EXPECTED_TEXT = "Hello from the mock upstream! You said: ping from the resume suite"
#: The upstream model of every continuation (target `second`).
CONTINUER = "upstream-gpt"

#: Each way a first target breaks after its first token: the router model,
#: the mock model it breaks on, and the text the client had at the break
#: (the prefill the continuation must carry).
BREAKS: dict[str, tuple[str, str]] = {
    # role chunk, "Hello", " from", then the connection drops between events
    "resume-cut": ("cut-stream", "Hello from"),
    # ... or in the middle of the next event (" the" is never relayed)
    "resume-cut-mid-event": ("cut-mid-event", "Hello from"),
    # role chunk, "Hello", then silence past `timeouts.idle`
    "resume-stall": (CHAT_HANG, "Hello"),
    # role chunk, "Hello", then `{"error": ...}` (read on its own)
    "resume-error": (CHAT_ERROR_LATE, "Hello"),
    # role chunk, "Hello", " from", then a clean end: no finish_reason, no [DONE]
    "resume-truncated": (CHAT_TRUNCATED, "Hello from"),
}
BROKEN = list(BREAKS)

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


class TeeTransport(httpx.HTTPTransport):
    """Keeps a copy of every response body the client reads, as read."""

    def __init__(self) -> None:
        super().__init__()
        self.bodies: list[bytearray] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        seen = bytearray()
        self.bodies.append(seen)
        inner = response.stream

        class Tee(httpx.SyncByteStream):
            def __iter__(self) -> Iterator[bytes]:
                for part in inner:
                    seen.extend(part)
                    yield part

            def close(self) -> None:
                inner.close()

        response.stream = Tee()
        return response

    def last(self) -> str:
        assert self.bodies, "the client read no response"
        return bytes(self.bodies[-1]).decode()


@pytest.fixture
def tee() -> TeeTransport:
    return TeeTransport()


@pytest.fixture
def sdk(resume_router: Router, tee: TeeTransport) -> Iterator[openai.OpenAI]:
    """An SDK client on the resume router whose transport keeps the raw bodies."""
    c = openai.OpenAI(base_url=resume_router.base_url, api_key=CLIENT_KEY, max_retries=0,
                      timeout=CLIENT_TIMEOUT_S,
                      http_client=openai.DefaultHttpxClient(transport=tee))
    yield c
    c.close()


def read_stream(sdk: openai.OpenAI, model: str, **options: Any) -> list[Any]:
    """Every chunk the SDK yields for a streamed chat completion of `model`."""
    options.setdefault("messages", HELLO)
    return list(sdk.chat.completions.create(model=model, stream=True, **options))


def text_of(chunks: list[Any]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def data_events(raw: str) -> list[str]:
    """The `data:` of every SSE event in `raw`, in order."""
    return [line[len("data: "):] for frame in raw.split("\n\n")
            for line in frame.split("\n") if line.startswith("data: ")]


def assert_one_whole_stream(chunks: list[Any], raw: str) -> None:
    """What an application sees is one unbroken stream from one server."""
    assert chunks, raw
    assert {c.id for c in chunks} == {chunks[0].id}, raw
    assert {c.model for c in chunks} == {chunks[0].model}, raw
    assert {c.created for c in chunks} == {chunks[0].created}, raw
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert all(ch.index == 0 for c in chunks for ch in c.choices)
    finishes = [ch.finish_reason for c in chunks for ch in c.choices if ch.finish_reason]
    assert finishes == ["stop"], raw
    roles = [c for c in chunks if c.choices and c.choices[0].delta.role]
    assert len(roles) == 1 and roles[0] is chunks[0], raw
    events = data_events(raw)
    assert events[-1] == "[DONE]", raw
    assert events.count("[DONE]") == 1, raw
    assert raw.endswith("data: [DONE]\n\n"), raw
    assert not any(e != "[DONE]" and "error" in json.loads(e) for e in events), raw


def chat_requests(upstream: MockUpstream, model: str) -> list[Received]:
    return [r for r in upstream.requests
            if r.path == "/v1/chat/completions" and r.model == model]


def continuation(upstream: MockUpstream) -> dict[str, Any]:
    """The one continuation request the mock received (on `second`)."""
    sent = chat_requests(upstream, CONTINUER)
    assert len(sent) == 1, [r.body for r in sent]
    return sent[0].body


def metric(router: Router, name: str, **labels: str) -> float:
    """A counter's value on `GET /metrics` (0 when the series is absent)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"{router.url}/metrics", timeout=CLIENT_TIMEOUT_S) as reply:
        text = reply.read().decode()
    for line in text.splitlines():
        m = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if m and all(f'{k}="{v}"' in m.group(1).split(",") for k, v in labels.items()):
            return float(m.group(2))
    return 0.0


# -- the yardstick ---------------------------------------------------------------


def test_the_unbroken_answer_is_the_expected_text(sdk: openai.OpenAI, tee: TeeTransport):
    chunks = read_stream(sdk, "unbroken")
    assert text_of(chunks) == EXPECTED_TEXT
    assert_one_whole_stream(chunks, tee.last())


# -- each kind of break, resumed -------------------------------------------------------


@pytest.mark.parametrize("model", BROKEN)
def test_a_broken_stream_reads_as_one_whole_answer(sdk: openai.OpenAI, tee: TeeTransport,
                                                  upstream: MockUpstream, model: str):
    unbroken = text_of(read_stream(sdk, "unbroken"))
    upstream.reset()

    chunks = read_stream(sdk, model)  # raises nothing

    assert text_of(chunks) == unbroken == EXPECTED_TEXT
    assert_one_whole_stream(chunks, tee.last())
    assert all(c.usage is None for c in chunks), "the client did not ask for usage"
    assert CHAT_ERROR_MESSAGE not in tee.last()
    broken, _ = BREAKS[model]
    assert upstream.count(broken) == 1
    assert upstream.count(CONTINUER) == 1


@pytest.mark.parametrize("model", BROKEN)
def test_the_continuation_carries_the_text_so_far_as_a_prefill(sdk: openai.OpenAI,
                                                              upstream: MockUpstream, model: str):
    read_stream(sdk, model, max_tokens=50)

    broken, said = BREAKS[model]
    first = chat_requests(upstream, broken)[0].body
    assert first["messages"] == HELLO
    assert first["max_tokens"] == 50
    sent = continuation(upstream)
    assert sent["messages"] == [*HELLO, {"role": "assistant", "content": said}]
    assert sent["stream"] is True
    assert sent["stream_options"]["include_usage"] is True
    # Lowered by what was generated before the break (one token per piece).
    assert sent["max_tokens"] == 50 - len(said.split())
    assert "continue_final_message" not in sent  # `prefill: assistant`, not `vllm`


@pytest.mark.parametrize("model", BROKEN)
def test_usage_when_asked_is_one_last_chunk_summing_both_parts(sdk: openai.OpenAI,
                                                              tee: TeeTransport,
                                                              upstream: MockUpstream,
                                                              model: str):
    whole = read_stream(sdk, "unbroken", stream_options={"include_usage": True})
    upstream.reset()

    chunks = read_stream(sdk, model, stream_options={"include_usage": True})

    assert text_of(chunks) == EXPECTED_TEXT
    with_usage = [c for c in chunks if c.usage is not None]
    assert len(with_usage) == 1, tee.last()
    final = chunks[-1]
    assert with_usage[0] is final
    assert final.choices == []
    assert final.id == chunks[0].id
    usage = final.usage
    assert usage.completion_tokens > 0
    # One token per word at the mock, one per content event at the router:
    # the two parts add up to what the unbroken answer reports.
    assert usage.completion_tokens == whole[-1].usage.completion_tokens
    # The prompt is the continuation's, prefill included.
    prompt = continuation(upstream)["messages"]
    assert usage.prompt_tokens == sum(len(m["content"].split()) for m in prompt) + 1
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    data = data_events(tee.last())
    assert data[-1] == "[DONE]"
    assert json.loads(data[-2])["usage"] is not None


@pytest.mark.parametrize("model", BROKEN)
def test_the_stream_helper_gets_the_whole_completion(sdk: openai.OpenAI, model: str):
    with sdk.chat.completions.stream(model=model, messages=HELLO) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.content == EXPECTED_TEXT
    assert final.choices[0].finish_reason == "stop"


def test_an_error_event_read_with_the_first_token_is_held_back_too(sdk: openai.OpenAI,
                                                                   tee: TeeTransport,
                                                                   upstream: MockUpstream):
    """`error-at-once` writes its role chunk, first content chunk and error
    event in one chunk, so the router reads them at once (as it may from any
    upstream that fails quickly)."""
    chunks = read_stream(sdk, "resume-error-at-once")
    assert text_of(chunks) == EXPECTED_TEXT
    assert_one_whole_stream(chunks, tee.last())
    assert CHAT_ERROR_MESSAGE not in tee.last()
    assert upstream.count(CHAT_ERROR_AT_ONCE) == 1


def test_the_stalled_upstream_is_let_go(sdk: openai.OpenAI, upstream: MockUpstream):
    started = time.monotonic()
    chunks = read_stream(sdk, "resume-stall")
    elapsed = time.monotonic() - started

    assert text_of(chunks) == EXPECTED_TEXT
    # Resumed after the idle timeout, long before the mock would go on by itself.
    assert RESUME_IDLE_MS / 1000 <= elapsed < HANG_S / 2
    assert upstream.wait_for_dropped(CHAT_HANG, HANG_S), "the router never hung up on the stall"


def test_a_continuation_stops_at_the_lowered_max_tokens(sdk: openai.OpenAI,
                                                        upstream: MockUpstream):
    """`max_tokens` counts the whole answer: two words before the cut, three after."""
    whole = read_stream(sdk, "unbroken", max_tokens=5)
    upstream.reset()

    chunks = read_stream(sdk, "resume-cut", max_tokens=5)

    assert text_of(chunks) == text_of(whole) == "Hello from the mock upstream!"
    assert [ch.finish_reason for c in chunks for ch in c.choices if ch.finish_reason] == [
        "length"]
    assert continuation(upstream)["max_tokens"] == 3


def test_a_target_that_cannot_prefill_is_skipped(sdk: openai.OpenAI, tee: TeeTransport,
                                                 upstream: MockUpstream):
    chunks = read_stream(sdk, "resume-skips")
    assert text_of(chunks) == EXPECTED_TEXT
    assert_one_whole_stream(chunks, tee.last())
    assert upstream.count("never-prefilled") == 0  # `prefill: none`
    assert upstream.count(CONTINUER) == 1


def test_a_vllm_target_is_asked_to_continue_the_final_message(sdk: openai.OpenAI,
                                                              upstream: MockUpstream):
    chunks = read_stream(sdk, "resume-vllm")
    assert text_of(chunks) == EXPECTED_TEXT
    sent = continuation(upstream)
    assert sent["messages"][-1] == {"role": "assistant", "content": "Hello from"}
    assert sent["continue_final_message"] is True
    assert sent["add_generation_prompt"] is False


def test_the_async_client_reads_a_resumed_stream(resume_router: Router):
    async def run() -> list[Any]:
        async with openai.AsyncOpenAI(base_url=resume_router.base_url, api_key=CLIENT_KEY,
                                      max_retries=0, timeout=CLIENT_TIMEOUT_S) as c:
            stream = await c.chat.completions.create(model="resume-cut", messages=HELLO,
                                                     stream=True)
            return [chunk async for chunk in stream]

    chunks = asyncio.run(run())
    assert text_of(chunks) == EXPECTED_TEXT
    assert {c.id for c in chunks} == {chunks[0].id}


def test_resumes_are_counted(resume_router: Router, sdk: openai.OpenAI):
    before = metric(resume_router, "switchyard_stream_resumes_total",
                    model="resume-cut", outcome="resumed")
    read_stream(sdk, "resume-cut")
    after = metric(resume_router, "switchyard_stream_resumes_total",
                   model="resume-cut", outcome="resumed")
    assert after == before + 1


# -- what is not resumed -------------------------------------------------------------


def collect_until_error(sdk: openai.OpenAI, model: str, **options: Any
                        ) -> tuple[str, openai.APIError]:
    """The text the SDK yielded before it raised, and what it raised."""
    text = []
    with pytest.raises(openai.APIError) as raised:
        for chunk in sdk.chat.completions.create(model=model, stream=True,
                                                    messages=options.pop("messages", HELLO),
                                                    **options):
            if chunk.choices:
                text.append(chunk.choices[0].delta.content or "")
    return "".join(text), raised.value


def test_a_refused_prefill_never_masks_the_original_break(resume_router: Router,
                                                          sdk: openai.OpenAI,
                                                          tee: TeeTransport,
                                                          upstream: MockUpstream):
    before = metric(resume_router, "switchyard_stream_resumes_total",
                    model="resume-refused", outcome="failed")

    text, e = collect_until_error(sdk, "resume-refused")

    assert not isinstance(e, openai.APIStatusError)  # in-band, after the 200
    assert text == "Hello from"
    assert e.code == "upstream_stream_interrupted"
    assert "`first`" in e.message and "broke off" in e.message, e.message
    assert "prefill" not in e.message
    assert "prefill" not in tee.last()
    assert "[DONE]" not in tee.last()
    # The continuation was tried, and refused.
    (refused,) = chat_requests(upstream, CHAT_NO_PREFILL)
    assert refused.body["messages"][-1] == {"role": "assistant", "content": "Hello from"}
    assert NO_PREFILL_MESSAGE in refused.response.decode()
    assert upstream.count(CONTINUER) == 0
    after = metric(resume_router, "switchyard_stream_resumes_total",
                   model="resume-refused", outcome="failed")
    assert after == before + 1


def test_a_stream_of_tool_calls_is_not_resumed(sdk: openai.OpenAI, upstream: MockUpstream):
    calls: list[str] = []
    with pytest.raises(openai.APIError) as raised:
        for chunk in sdk.chat.completions.create(
                model="resume-tools", messages=[{"role": "user", "content": "Weather?"}],
                tools=[WEATHER_TOOL], stream=True):
            for call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
                calls.append(call.function.arguments or "")
    assert "".join(calls) == TOOL_ARGUMENTS  # every argument came, not the finish
    assert raised.value.code == "upstream_stream_interrupted"
    assert upstream.count("cut-stream") == 1
    assert upstream.count(CONTINUER) == 0, "no continuation of tool-call arguments"


def test_without_resume_the_cut_still_raises(sdk: openai.OpenAI, upstream: MockUpstream):
    text, e = collect_until_error(sdk, "no-resume")
    assert text == "Hello from"
    assert e.code == "upstream_stream_interrupted"
    assert upstream.count(CONTINUER) == 0


def test_a_finished_stream_without_done_is_not_resumed(sdk: openai.OpenAI,
                                                       tee: TeeTransport,
                                                       upstream: MockUpstream):
    """`no-done` sends its `finish_reason` and ends without `[DONE]`: the
    answer is complete, so there is nothing to continue."""
    chunks = read_stream(sdk, "resume-nodone")
    assert text_of(chunks) == EXPECTED_TEXT
    assert [ch.finish_reason for c in chunks for ch in c.choices if ch.finish_reason] == ["stop"]
    assert "error" not in tee.last()
    assert upstream.count(CHAT_NO_DONE) == 1
    assert upstream.count(CONTINUER) == 0


# -- the Messages front door -------------------------------------------------------------


def test_the_messages_door_reads_a_resumed_stream_as_one_message(resume_router: Router,
                                                                 upstream: MockUpstream):
    """The door translates the chat answer underneath into Anthropic's
    events; the resume happens below it, so the Claude client sees one text."""
    said = "ping from the door"
    with make_door_client(resume_router) as door:
        with door.messages.stream(model="resume-cut", max_tokens=64,
                                  messages=[{"role": "user", "content": said}]) as stream:
            pieces = list(stream.text_stream)
            message = stream.get_final_message()

    expected = f"Hello from the mock upstream! You said: {said}"
    assert "".join(pieces) == expected
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == expected
    assert message.stop_reason == "end_turn"
    sent = continuation(upstream)
    assert sent["messages"][-1] == {"role": "assistant", "content": "Hello from"}
    assert sent["max_tokens"] == 64 - 2


# -- the mock's prefill, without a router ------------------------------------------------


def post_chat(upstream: MockUpstream, body: dict[str, Any]) -> tuple[int, bytes]:
    request = urllib.request.Request(f"{upstream.base_url}/chat/completions",
                                     data=json.dumps(body).encode(), method="POST",
                                     headers={"content-type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=CLIENT_TIMEOUT_S) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_the_mock_continues_a_prefill_with_the_rest_of_its_answer(upstream: MockUpstream):
    prefilled = [*HELLO, {"role": "assistant", "content": "Hello from"}]
    status, body = post_chat(upstream, {"model": CONTINUER, "messages": prefilled})
    assert status == 200
    answer = json.loads(body)
    rest = EXPECTED_TEXT[len("Hello from"):]
    assert answer["choices"][0]["message"]["content"] == rest
    assert answer["usage"]["completion_tokens"] == len(rest.split())

    status, body = post_chat(upstream, {"model": CONTINUER, "messages": prefilled,
                                        "stream": True})
    deltas = [json.loads(d)["choices"][0]["delta"].get("content") or ""
              for d in data_events(body.decode()) if d != "[DONE]"]
    assert "".join(deltas) == rest
    assert all(d.startswith(" ") for d in deltas if d)  # word-sized, space first

    # A prefill the answer does not start with: the whole answer.
    status, body = post_chat(upstream, {"model": CONTINUER, "messages": [
        *HELLO, {"role": "assistant", "content": "Goodbye"}]})
    assert json.loads(body)["choices"][0]["message"]["content"] == EXPECTED_TEXT


def test_the_mock_no_prefill_model_refuses_only_a_prefill(upstream: MockUpstream):
    status, body = post_chat(upstream, {"model": CHAT_NO_PREFILL, "messages": [
        *HELLO, {"role": "assistant", "content": "Hello"}]})
    assert status == 400
    assert json.loads(body)["error"] == {"message": NO_PREFILL_MESSAGE,
                                         "type": "invalid_request_error",
                                         "param": "messages", "code": None}
    status, body = post_chat(upstream, {"model": CHAT_NO_PREFILL, "messages": HELLO})
    assert status == 200
    assert json.loads(body)["choices"][0]["message"]["content"] == EXPECTED_TEXT


def test_the_mock_truncated_stream_ends_without_finishing(upstream: MockUpstream):
    status, body = post_chat(upstream, {"model": CHAT_TRUNCATED, "messages": HELLO,
                                        "stream": True})
    events = [json.loads(d) for d in data_events(body.decode())]  # no [DONE]
    assert [e["choices"][0]["delta"].get("content") for e in events] == ["", "Hello", " from"]
    assert all(e["choices"][0]["finish_reason"] is None for e in events)
