"""`provider: bedrock` through the official OpenAI SDK.

The application speaks OpenAI (`openai.OpenAI` on the Bedrock router from
`conftest.py`); the router translates each chat request to Bedrock's
Converse API (`/converse-stream` when streamed), signs it with SigV4 (or
sends a Bedrock API key), and translates each answer back: JSON, AWS's
binary event stream, or an error named in `x-amzn-ErrorType`. The mock's
`/model/...` verifies every signature with its own SigV4 implementation
(checked below against AWS's published vectors) and refuses what Bedrock
refuses, so a wrong canonical request, a leaked OpenAI field or a broken
tool round trip fails here.
"""

from __future__ import annotations

import base64
import json
import struct
import time
import urllib.error
import urllib.request
import zlib
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator
from urllib.parse import quote

import openai
import pydantic
import pytest

from conftest import (
    BEDROCK_REGION,
    CLIENT_KEY,
    CLIENT_TIMEOUT_S,
    SECRETS,
    UPSTREAM_KEY,
)
from mock_upstream import (
    BEDROCK_ACCESS_KEY_ID,
    BEDROCK_API_KEY,
    BEDROCK_CLAUDE,
    BEDROCK_GUARDRAIL_TEXT,
    BEDROCK_HANG,
    BEDROCK_LLAMA,
    BEDROCK_SECRET_ACCESS_KEY,
    BEDROCK_SESSION_TOKEN,
    BEDROCK_SLOW,
    BEDROCK_STREAM_ERROR_MESSAGE,
    BEDROCK_STREAM_EXCEPTION,
    BEDROCK_STREAM_THROTTLED,
    BEDROCK_THROTTLED,
    BEDROCK_THROTTLED_MESSAGE,
    BEDROCK_UNAVAILABLE,
    CONVERSE_FIELDS,
    PARALLEL_TRIGGER,
    TOOL_PREAMBLE,
    MockUpstream,
    Received,
    converse_input_tokens,
    sigv4_canonical_request,
    sigv4_signature,
)

HELLO = [{"role": "user", "content": "ping from the compat suite"}]
EXPECTED_TEXT = "Hello from the mock upstream! You said: ping from the compat suite"
WEATHER_QUESTION = [{"role": "user", "content": "What is the weather in Oslo?"}]

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
TIME_TOOL = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "The time of day somewhere.",
        "parameters": {
            "type": "object",
            "properties": {"zone": {"type": "string"}, "hours24": {"type": "boolean"}},
        },
    },
}

CLAUDE_PATH = "/model/anthropic.claude-3-5-haiku-20241022-v1%3A0"
LLAMA_PATH = "/model/meta.llama3-8b-instruct-v1%3A0"
#: How long a test waits for the mock to see the router hang up.
DROP_DEADLINE_S = 5.0


def bedrock_requests(upstream: MockUpstream) -> list[Received]:
    return [r for r in upstream.requests if r.path.startswith("/model/")]


def last_bedrock(upstream: MockUpstream) -> Received:
    """The last request the mock's Bedrock API received."""
    sent = bedrock_requests(upstream)
    assert sent, "the mock's Bedrock API received no request"
    assert sent[-1].method == "POST"
    return sent[-1]


def sent_body(upstream: MockUpstream) -> Any:
    return last_bedrock(upstream).body


def answer_words(text: str) -> int:
    """`outputTokens` the mock reports for a text answer."""
    return len(text.split())


def read_sse_error(stream: Any) -> tuple[str, openai.APIError]:
    """Reads a streamed answer until the SDK raises; the text before, and the error."""
    text = []
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            if chunk.choices:
                text.append(chunk.choices[0].delta.content or "")
    return "".join(text), info.value


@pytest.fixture(autouse=True)
def every_signed_request_verified(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test that drives the router: every Bedrock request the mock
    received was authenticated, and every signature verified at the mock."""
    if not {"bedrock_client", "upstream"} <= set(request.fixturenames) or \
            "refused_signatures_expected" in request.fixturenames:
        yield
        return
    # The session's mock (`upstream` is the same object, reset for the test).
    mock: MockUpstream = request.getfixturevalue("mock_server")
    yield
    for received in bedrock_requests(mock):
        auth = received.auth
        assert auth is not None, f"{received.path}: not checked"
        assert auth.ok, f"{received.path}: {auth.error_type}: {auth.message}"
        if auth.scheme == "sigv4":
            assert auth.region == BEDROCK_REGION
            assert auth.service == "bedrock"
            assert auth.access_key_id == BEDROCK_ACCESS_KEY_ID


# -- chat -----------------------------------------------------------------------


def test_chat_completion_comes_back_in_the_openai_shape(bedrock_client: openai.OpenAI,
                                                        upstream: MockUpstream):
    completion = bedrock_client.chat.completions.create(model="claude-bedrock",
                                                        messages=HELLO)

    assert completion.object == "chat.completion"
    assert completion.id
    assert completion.model == BEDROCK_CLAUDE
    assert len(completion.choices) == 1
    choice = completion.choices[0]
    assert choice.index == 0
    assert choice.message.role == "assistant"
    assert choice.message.content == EXPECTED_TEXT
    assert not choice.message.tool_calls
    assert choice.finish_reason == "stop"  # from end_turn
    usage = completion.usage
    assert usage is not None
    assert usage.prompt_tokens == converse_input_tokens(sent_body(upstream))
    assert usage.completion_tokens == answer_words(EXPECTED_TEXT)
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert upstream.count(BEDROCK_CLAUDE) == 1


def test_what_goes_up_is_a_signed_converse_request(bedrock_client: openai.OpenAI,
                                                   upstream: MockUpstream):
    bedrock_client.chat.completions.create(
        model="claude-bedrock",
        messages=[{"role": "system", "content": "Be terse."}, *HELLO],
        temperature=0.25, top_p=0.5, max_tokens=50, stop=["\n\n"],
    )

    received = last_bedrock(upstream)
    # The model id in the path, its `:` percent-encoded.
    assert received.path == f"{CLAUDE_PATH}/converse"
    authorization = received.headers["authorization"]
    assert authorization.startswith(
        f"AWS4-HMAC-SHA256 Credential={BEDROCK_ACCESS_KEY_ID}/")
    assert f"/{BEDROCK_REGION}/bedrock/aws4_request" in authorization
    assert received.auth is not None and received.auth.scheme == "sigv4"
    assert received.auth.ok, received.auth.message  # recomputed at the mock
    assert "host" in received.auth.signed_headers
    amz_date = received.headers["x-amz-date"]
    assert len(amz_date) == 16 and amz_date.endswith("Z")
    assert received.auth.date == amz_date[:8]
    assert received.headers["x-amz-security-token"] == BEDROCK_SESSION_TOKEN
    assert CLIENT_KEY not in json.dumps(received.headers)
    assert received.headers["content-type"].startswith("application/json")
    body = received.body
    assert body["messages"] == [{"role": "user", "content": [{"text": HELLO[0]["content"]}]}]
    assert body["system"] == [{"text": "Be terse."}]
    assert body["inferenceConfig"] == {
        "maxTokens": 50, "temperature": 0.25, "topP": 0.5, "stopSequences": ["\n\n"]}
    assert set(body) <= CONVERSE_FIELDS
    assert "model" not in body and "stream" not in body


def test_system_and_developer_messages_become_system_blocks(bedrock_client: openai.OpenAI,
                                                            upstream: MockUpstream):
    completion = bedrock_client.chat.completions.create(model="claude-bedrock", messages=[
        {"role": "system", "content": "Be terse."},
        {"role": "developer", "content": [{"type": "text", "text": "Answer in English."}]},
        *HELLO,
    ])
    assert completion.choices[0].message.content == EXPECTED_TEXT
    body = sent_body(upstream)
    assert body["system"] in ([{"text": "Be terse."}, {"text": "Answer in English."}],
                              [{"text": "Be terse.\n\nAnswer in English."}])
    assert [m["role"] for m in body["messages"]] == ["user"]


def test_no_max_tokens_leaves_it_to_the_model(bedrock_client: openai.OpenAI,
                                              upstream: MockUpstream):
    bedrock_client.chat.completions.create(model="claude-bedrock", messages=HELLO)
    assert "maxTokens" not in (sent_body(upstream).get("inferenceConfig") or {})


def test_max_completion_tokens_goes_up_as_max_tokens(bedrock_client: openai.OpenAI,
                                                     upstream: MockUpstream):
    bedrock_client.chat.completions.create(model="claude-bedrock", messages=HELLO,
                                           max_completion_tokens=60)
    assert sent_body(upstream)["inferenceConfig"]["maxTokens"] == 60


def test_temperature_above_bedrocks_range_is_not_a_400(bedrock_client: openai.OpenAI,
                                                       upstream: MockUpstream):
    """Converse takes 0-1, OpenAI 0-2: like the Anthropic translation, a
    value above 1 should be clamped rather than sent up to be refused."""
    completion = bedrock_client.chat.completions.create(model="claude-bedrock",
                                                        messages=HELLO, temperature=1.5)
    assert completion.choices[0].message.content == EXPECTED_TEXT
    assert sent_body(upstream)["inferenceConfig"]["temperature"] <= 1


@pytest.mark.parametrize(
    ("extra", "content", "finish_reason"),
    [
        ({"max_tokens": 3}, "Hello from the", "length"),  # Bedrock: max_tokens
        ({"stop": " mock"}, "Hello from the", "stop"),  # Bedrock: stop_sequence
    ],
)
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_stop_reasons_become_finish_reasons(bedrock_client: openai.OpenAI,
                                            extra: dict[str, Any], content: str,
                                            finish_reason: str, stream: bool):
    if stream:
        chunks = [c for c in bedrock_client.chat.completions.create(
            model="claude-bedrock", messages=HELLO, stream=True, **extra) if c.choices]
        text = "".join(c.choices[0].delta.content or "" for c in chunks)
        finish = chunks[-1].choices[0].finish_reason
    else:
        completion = bedrock_client.chat.completions.create(model="claude-bedrock",
                                                            messages=HELLO, **extra)
        text = completion.choices[0].message.content
        finish = completion.choices[0].finish_reason
    assert text == content
    assert finish == finish_reason


def test_image_data_url_goes_up_as_image_bytes(bedrock_client: openai.OpenAI,
                                               upstream: MockUpstream):
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n not really a picture").decode()
    completion = bedrock_client.chat.completions.create(model="claude-bedrock", messages=[{
        "role": "user",
        "content": [
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
        ],
    }])

    assert completion.choices[0].message.content == (
        "Hello from the mock upstream! You said: What is in this picture?")
    assert sent_body(upstream)["messages"] == [{"role": "user", "content": [
        {"text": "What is in this picture?"},
        {"image": {"format": "png", "source": {"bytes": png}}},
    ]}]


def test_a_llama_model_id_with_a_colon_is_encoded_in_the_path(bedrock_client: openai.OpenAI,
                                                              upstream: MockUpstream):
    completion = bedrock_client.chat.completions.create(model="llama-bedrock", messages=HELLO)
    assert completion.choices[0].message.content == EXPECTED_TEXT
    assert completion.model == BEDROCK_LLAMA
    assert last_bedrock(upstream).path == f"{LLAMA_PATH}/converse"
    assert upstream.count(BEDROCK_LLAMA) == 1


def test_a_bedrock_api_key_is_sent_as_a_bearer_token_instead_of_a_signature(
    bedrock_client: openai.OpenAI, upstream: MockUpstream
):
    completion = bedrock_client.chat.completions.create(model="llama-bedrock-key",
                                                        messages=HELLO)
    assert completion.choices[0].message.content == EXPECTED_TEXT
    received = last_bedrock(upstream)
    assert received.path == f"{LLAMA_PATH}/converse"
    assert received.headers["authorization"] == f"Bearer {BEDROCK_API_KEY}"
    assert received.auth is not None and received.auth.scheme == "bearer"
    assert received.auth.ok
    assert "x-amz-date" not in received.headers
    assert "x-amz-security-token" not in received.headers


# -- streams --------------------------------------------------------------------


def test_stream_with_include_usage_adds_up_and_ends_with_usage(bedrock_client: openai.OpenAI,
                                                               upstream: MockUpstream):
    stream = bedrock_client.chat.completions.create(
        model="claude-bedrock", messages=HELLO, stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    received = last_bedrock(upstream)
    assert received.path == f"{CLAUDE_PATH}/converse-stream"
    assert received.auth is not None and received.auth.ok, received.auth
    assert "stream" not in received.body and "stream_options" not in received.body
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert {c.id for c in chunks} == {chunks[0].id}
    with_choices = [c for c in chunks if c.choices]
    assert with_choices[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in with_choices)
    assert text == EXPECTED_TEXT
    assert len([c for c in with_choices if c.choices[0].delta.content]) > 1
    finishes = [c.choices[0].finish_reason for c in with_choices if c.choices[0].finish_reason]
    assert finishes == ["stop"]  # exactly one
    assert with_choices[-1].choices[0].finish_reason == "stop"
    final = chunks[-1]
    assert final.choices == []
    assert final.usage is not None
    assert final.usage.prompt_tokens == converse_input_tokens(received.body)
    assert final.usage.completion_tokens == answer_words(EXPECTED_TEXT)
    assert final.usage.total_tokens == final.usage.prompt_tokens + final.usage.completion_tokens
    assert all(c.usage is None for c in chunks[:-1])


def test_stream_without_include_usage_has_no_usage(bedrock_client: openai.OpenAI):
    chunks = list(bedrock_client.chat.completions.create(model="claude-bedrock",
                                                         messages=HELLO, stream=True))

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == EXPECTED_TEXT
    assert all(c.choices for c in chunks)
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_sdk_stream_helper_accumulates_the_text(bedrock_client: openai.OpenAI):
    with bedrock_client.chat.completions.stream(model="claude-bedrock",
                                                messages=HELLO) as stream:
        deltas = [e.delta for e in stream if e.type == "content.delta"]
        final = stream.get_final_completion()
    assert "".join(deltas) == EXPECTED_TEXT
    assert final.choices[0].message.content == EXPECTED_TEXT
    assert final.choices[0].finish_reason == "stop"


def test_exception_frame_after_the_first_token_raises_api_error(bedrock_client: openai.OpenAI,
                                                                upstream: MockUpstream):
    """A `modelStreamErrorException` frame after the first delta (past the
    commit point) reaches the SDK as an in-band error, never a short answer."""
    stream = bedrock_client.chat.completions.create(model="bedrock-stream-exception",
                                                    messages=HELLO, stream=True)
    text, e = read_sse_error(stream)
    assert not isinstance(e, openai.APIStatusError)  # in-band, after the 200
    assert "modelStreamErrorException" in str(e.code)
    assert BEDROCK_STREAM_ERROR_MESSAGE in e.message
    assert text == EXPECTED_TEXT.split(" ")[0]  # the one delta before the exception
    assert upstream.count(BEDROCK_STREAM_EXCEPTION) == 1


def test_throttled_before_the_first_token_falls_back(bedrock_client: openai.OpenAI,
                                                     upstream: MockUpstream):
    """A `throttlingException` frame before any content fails the attempt
    (nothing was sent to the client yet), so the fallback answers."""
    chunks = list(bedrock_client.chat.completions.create(
        model="bedrock-stream-throttled", messages=HELLO, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == EXPECTED_TEXT
    assert chunks[0].id.startswith("chatcmpl-mock")  # the OpenAI fallback's stream
    assert upstream.count(BEDROCK_STREAM_THROTTLED) >= 1
    assert upstream.count("upstream-gpt") == 1


def test_stream_cut_mid_frame_raises_api_error(bedrock_client: openai.OpenAI):
    stream = bedrock_client.chat.completions.create(model="bedrock-cut-stream",
                                                    messages=HELLO, stream=True)
    text, e = read_sse_error(stream)
    assert not isinstance(e, openai.APIStatusError)
    assert e.code == "upstream_stream_interrupted"  # as for a cut OpenAI upstream
    assert text == " ".join(EXPECTED_TEXT.split(" ")[:2])


def test_client_closing_the_stream_drops_the_bedrock_request(bedrock_client: openai.OpenAI,
                                                             upstream: MockUpstream):
    stream = bedrock_client.chat.completions.create(model="bedrock-hang", messages=HELLO,
                                                    stream=True)
    first = next(iter(stream))
    assert first.choices and first.object == "chat.completion.chunk"
    assert upstream.dropped(BEDROCK_HANG) == 0
    started = time.monotonic()
    stream.close()

    assert upstream.wait_for_dropped(BEDROCK_HANG, DROP_DEADLINE_S), (
        "the router must hang up on Bedrock when its client leaves")
    assert time.monotonic() - started < DROP_DEADLINE_S


def test_bedrock_slower_than_first_byte_timeout_raises_504(bedrock_client: openai.OpenAI,
                                                           upstream: MockUpstream):
    with pytest.raises(openai.InternalServerError) as info:
        bedrock_client.chat.completions.create(model="bedrock-slow", messages=HELLO)
    e = info.value
    assert e.status_code == 504
    assert e.code == "upstream_timeout"
    assert upstream.count(BEDROCK_SLOW) >= 1


# -- tools ----------------------------------------------------------------------


def test_tool_call_comes_back_with_parsed_arguments(bedrock_client: openai.OpenAI,
                                                    upstream: MockUpstream):
    completion = bedrock_client.chat.completions.create(
        model="claude-bedrock", messages=WEATHER_QUESTION, tools=[WEATHER_TOOL],
    )

    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"  # from tool_use
    assert choice.message.content == TOOL_PREAMBLE  # the text block before toolUse
    assert len(choice.message.tool_calls) == 1
    call = choice.message.tool_calls[0]
    assert call.type == "function"
    assert call.id.startswith("tooluse_")  # Bedrock's toolUseId
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Oslo"}
    tool_config = sent_body(upstream)["toolConfig"]
    assert tool_config["tools"] == [{"toolSpec": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "inputSchema": {"json": WEATHER_TOOL["function"]["parameters"]},
    }}]
    assert tool_config.get("toolChoice", {"auto": {}}) == {"auto": {}}


@pytest.mark.parametrize(
    ("tool_choice", "sent", "called"),
    [
        ("required", {"any": {}}, "get_weather"),
        ({"type": "function", "function": {"name": "get_time"}},
         {"tool": {"name": "get_time"}}, "get_time"),
    ],
    ids=["required", "named"],
)
def test_tool_choice_is_mapped(bedrock_client: openai.OpenAI, upstream: MockUpstream,
                               tool_choice: Any, sent: dict[str, Any], called: str):
    completion = bedrock_client.chat.completions.create(
        model="claude-bedrock", messages=WEATHER_QUESTION, tools=[WEATHER_TOOL, TIME_TOOL],
        tool_choice=tool_choice,
    )

    assert sent_body(upstream)["toolConfig"]["toolChoice"] == sent
    message = completion.choices[0].message
    assert not message.content  # a forced call comes alone
    assert [c.function.name for c in message.tool_calls] == [called]
    assert completion.choices[0].finish_reason == "tool_calls"
    if called == "get_time":
        arguments = json.loads(message.tool_calls[0].function.arguments)
        assert arguments == {"zone": "Oslo", "hours24": True}  # fits the schema


def test_tool_choice_none_gets_no_tool_call(bedrock_client: openai.OpenAI,
                                            upstream: MockUpstream):
    """Converse has no `none`: the tools must not go up offered."""
    completion = bedrock_client.chat.completions.create(
        model="claude-bedrock", messages=WEATHER_QUESTION, tools=[WEATHER_TOOL],
        tool_choice="none",
    )
    message = completion.choices[0].message
    assert not message.tool_calls
    assert message.content.startswith("Hello from the mock upstream!")
    assert completion.choices[0].finish_reason == "stop"
    assert "toolChoice" not in (sent_body(upstream).get("toolConfig") or {}) or \
        "none" not in sent_body(upstream)["toolConfig"]["toolChoice"]


def test_streamed_tool_use_becomes_tool_call_deltas(bedrock_client: openai.OpenAI):
    """The toolUse block is Bedrock's content block 1 (after the text);
    OpenAI's `tool_calls[].index` counts tool calls, so it must be 0."""
    stream = bedrock_client.chat.completions.create(
        model="claude-bedrock", messages=WEATHER_QUESTION, tools=[WEATHER_TOOL], stream=True,
    )
    text, calls, finishes = "", {}, []
    for chunk in stream:
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        text += delta.content or ""
        for tc in delta.tool_calls or []:
            call = calls.setdefault(tc.index, {"id": None, "name": None, "arguments": ""})
            call["id"] = tc.id or call["id"]
            if tc.function and tc.function.name:
                call["name"] = tc.function.name
            if tc.function and tc.function.arguments:
                call["arguments"] += tc.function.arguments
        if chunk.choices[0].finish_reason:
            finishes.append(chunk.choices[0].finish_reason)

    assert text == TOOL_PREAMBLE
    assert finishes == ["tool_calls"]
    assert list(calls) == [0]
    assert calls[0]["id"].startswith("tooluse_")
    assert calls[0]["name"] == "get_weather"
    assert json.loads(calls[0]["arguments"]) == {"city": "Oslo"}


@pytest.mark.parametrize("tool_choice", ["auto", "required"])
def test_sdk_stream_helper_accumulates_the_tool_call(bedrock_client: openai.OpenAI,
                                                     tool_choice: str):
    with bedrock_client.chat.completions.stream(
        model="claude-bedrock", messages=WEATHER_QUESTION, tools=[WEATHER_TOOL],
        tool_choice=tool_choice,
    ) as stream:
        final = stream.get_final_completion()

    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    if tool_choice == "auto":
        assert choice.message.content == TOOL_PREAMBLE
    else:
        # OpenAI's own streams give None here; the router's first chunk
        # always carries `content: ""` (docs/providers.md), as it cannot
        # know at `messageStart` that only tool calls follow.
        assert choice.message.content in (None, "")
    assert len(choice.message.tool_calls) == 1
    call = choice.message.tool_calls[0]
    assert call.id.startswith("tooluse_")
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Oslo"}


@pytest.mark.parametrize("tool_choice", ["auto", "required"])
def test_tool_round_trip_goes_up_as_tool_use_and_tool_result_blocks(
    bedrock_client: openai.OpenAI, upstream: MockUpstream, tool_choice: str
):
    messages: list[Any] = list(WEATHER_QUESTION)
    first = bedrock_client.chat.completions.create(model="claude-bedrock", messages=messages,
                                                   tools=[WEATHER_TOOL], tool_choice=tool_choice)
    call = first.choices[0].message.tool_calls[0]
    preamble = [{"text": TOOL_PREAMBLE}] if tool_choice == "auto" else []

    messages.append(first.choices[0].message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": "12 degrees and clear"})
    second = bedrock_client.chat.completions.create(model="claude-bedrock", messages=messages,
                                                    tools=[WEATHER_TOOL])

    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content == "The tool said: 12 degrees and clear"
    assert not second.choices[0].message.tool_calls
    body = sent_body(upstream)
    sent = body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert sent[0]["content"] == [{"text": WEATHER_QUESTION[0]["content"]}]
    assert sent[1]["content"] == [
        *preamble,
        {"toolUse": {"toolUseId": call.id, "name": "get_weather", "input": {"city": "Oslo"}}},
    ]
    assert len(sent[2]["content"]) == 1
    result = sent[2]["content"][0]["toolResult"]
    assert result["toolUseId"] == call.id
    assert result["content"] in ([{"text": "12 degrees and clear"}],
                                 [{"json": {"content": "12 degrees and clear"}}],
                                 [{"json": {"result": "12 degrees and clear"}}])
    assert result.get("status", "success") == "success"
    assert "toolConfig" in body  # Bedrock refuses toolUse blocks without it


def test_tool_result_and_a_following_user_message_share_one_user_turn(
    bedrock_client: openai.OpenAI, upstream: MockUpstream
):
    """Converse has no tool role and insists on alternating turns: the result
    and the user's next words merge into one user turn."""
    messages: list[Any] = list(WEATHER_QUESTION)
    first = bedrock_client.chat.completions.create(model="claude-bedrock", messages=messages,
                                                   tools=[WEATHER_TOOL])
    call = first.choices[0].message.tool_calls[0]
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "12 degrees and clear"},
        {"role": "user", "content": "And tomorrow?"},
    ]
    second = bedrock_client.chat.completions.create(model="claude-bedrock", messages=messages,
                                                    tools=[WEATHER_TOOL])

    assert second.choices[0].message.content == "The tool said: 12 degrees and clear"
    sent = sent_body(upstream)["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    blocks = sent[2]["content"]
    assert [next(iter(b)) for b in blocks] == ["toolResult", "text"]
    assert blocks[0]["toolResult"]["toolUseId"] == call.id
    assert blocks[1]["text"] == "And tomorrow?"


@pytest.mark.parametrize("first_streamed", [False, True], ids=["whole", "streamed"])
def test_parallel_tool_results_go_up_in_one_user_message(bedrock_client: openai.OpenAI,
                                                         upstream: MockUpstream,
                                                         first_streamed: bool):
    """Two toolUse blocks in one answer (streamed: OpenAI indexes 0 and 1);
    their results must go up as one user message, in order, since Converse
    insists on alternating turns."""
    messages: list[Any] = [{"role": "user", "content": f"Oslo, with {PARALLEL_TRIGGER}."}]
    tools = [WEATHER_TOOL, TIME_TOOL]
    if first_streamed:
        with bedrock_client.chat.completions.stream(model="claude-bedrock", messages=messages,
                                                    tools=tools) as stream:
            first = stream.get_final_completion()
    else:
        first = bedrock_client.chat.completions.create(model="claude-bedrock",
                                                       messages=messages, tools=tools)
    calls = first.choices[0].message.tool_calls
    assert [c.function.name for c in calls] == ["get_weather", "get_time"]
    assert json.loads(calls[1].function.arguments) == {"zone": "Oslo", "hours24": True}
    assert first.choices[0].message.content == TOOL_PREAMBLE

    messages.append(first.choices[0].message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": calls[0].id, "content": "12 degrees"})
    messages.append({"role": "tool", "tool_call_id": calls[1].id, "content": "09:00"})
    second = bedrock_client.chat.completions.create(model="claude-bedrock", messages=messages,
                                                    tools=tools)

    assert second.choices[0].message.content == "The tool said: 09:00"  # the last result
    sent = sent_body(upstream)["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert [b["toolUse"]["toolUseId"] for b in sent[1]["content"] if "toolUse" in b] == \
        [calls[0].id, calls[1].id]
    assert [b["toolResult"]["toolUseId"] for b in sent[2]["content"]] == \
        [calls[0].id, calls[1].id]


def test_a_tool_history_made_on_gemini_can_continue_on_bedrock(
    gemini_client: openai.OpenAI, bedrock_client: openai.OpenAI, upstream: MockUpstream
):
    """A conversation moves (an app switches models, or a fallback serves the
    next turn): the tool call was made by a Gemini upstream, whose ids carry
    the thought signature and run far past Converse's 64-character toolUseId.
    The Bedrock request must still be one Converse accepts, with the toolUse
    and its toolResult paired."""
    messages: list[Any] = list(WEATHER_QUESTION)
    first = gemini_client.chat.completions.create(model="gemini-3", messages=messages,
                                                  tools=[WEATHER_TOOL])
    call = first.choices[0].message.tool_calls[0]
    messages.append(first.choices[0].message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": "12 degrees and clear"})

    second = bedrock_client.chat.completions.create(model="claude-bedrock", messages=messages,
                                                    tools=[WEATHER_TOOL])

    assert second.choices[0].message.content == "The tool said: 12 degrees and clear"
    sent = sent_body(upstream)["messages"]
    use_id = next(b["toolUse"]["toolUseId"] for b in sent[1]["content"] if "toolUse" in b)
    assert sent[2]["content"][0]["toolResult"]["toolUseId"] == use_id


def test_a_model_without_tool_use_passes_bedrocks_400_on(bedrock_client: openai.OpenAI,
                                                         upstream: MockUpstream):
    """Llama 3 8B takes no tools on Bedrock: its ValidationException reaches
    the SDK as BadRequestError in OpenAI's error shape."""
    with pytest.raises(openai.BadRequestError) as info:
        bedrock_client.chat.completions.create(model="llama-bedrock", messages=WEATHER_QUESTION,
                                               tools=[WEATHER_TOOL])
    e = info.value
    assert e.type == "invalid_request_error"
    assert e.code == "ValidationException"
    assert "doesn't support tool use" in e.message
    assert set(json.loads(e.response.content)["error"]) >= {"message", "type", "code"}
    assert upstream.count(BEDROCK_LLAMA) == 1  # a 400 is not retried


def test_a_json_tool_result_goes_up_as_a_json_block(bedrock_client: openai.OpenAI,
                                                    upstream: MockUpstream):
    messages: list[Any] = list(WEATHER_QUESTION)
    first = bedrock_client.chat.completions.create(model="claude-bedrock", messages=messages,
                                                   tools=[WEATHER_TOOL])
    call = first.choices[0].message.tool_calls[0]
    messages += [first.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id,
                  "content": '{"celsius": 12, "sky": "clear"}'}]
    bedrock_client.chat.completions.create(model="claude-bedrock", messages=messages,
                                           tools=[WEATHER_TOOL])
    result = sent_body(upstream)["messages"][2]["content"][0]["toolResult"]
    assert result["toolUseId"] == call.id
    assert result["content"] == [{"json": {"celsius": 12, "sky": "clear"}}]


class GetWeather(pydantic.BaseModel):
    """Current weather in a city."""

    city: str


def test_a_strict_pydantic_tool_is_called_and_parsed(bedrock_client: openai.OpenAI,
                                                     upstream: MockUpstream):
    completion = bedrock_client.chat.completions.parse(
        model="claude-bedrock", messages=WEATHER_QUESTION,
        tools=[openai.pydantic_function_tool(GetWeather)],
    )
    call = completion.choices[0].message.tool_calls[0]
    assert call.function.name == "GetWeather"
    assert call.function.parsed_arguments == GetWeather(city="Oslo")
    spec = sent_body(upstream)["toolConfig"]["tools"][0]["toolSpec"]
    assert spec["name"] == "GetWeather"
    assert "strict" not in spec or spec["strict"] is True


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_a_guardrail_intervention_comes_back_as_content_filter(bedrock_client: openai.OpenAI,
                                                               stream: bool):
    if stream:
        chunks = [c for c in bedrock_client.chat.completions.create(
            model="bedrock-guardrail", messages=HELLO, stream=True) if c.choices]
        text = "".join(c.choices[0].delta.content or "" for c in chunks)
        finishes = [c.choices[0].finish_reason for c in chunks if c.choices[0].finish_reason]
    else:
        completion = bedrock_client.chat.completions.create(model="bedrock-guardrail",
                                                            messages=HELLO)
        text = completion.choices[0].message.content
        finishes = [completion.choices[0].finish_reason]
    assert text == BEDROCK_GUARDRAIL_TEXT
    assert finishes == ["content_filter"]


def test_a_bedrock_api_key_streams_too(bedrock_client: openai.OpenAI, upstream: MockUpstream):
    chunks = list(bedrock_client.chat.completions.create(model="llama-bedrock-key",
                                                         messages=HELLO, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == \
        EXPECTED_TEXT
    received = last_bedrock(upstream)
    assert received.path == f"{LLAMA_PATH}/converse-stream"
    assert received.headers["authorization"] == f"Bearer {BEDROCK_API_KEY}"


# -- structured output ----------------------------------------------------------


class Weather(pydantic.BaseModel):
    city: str
    celsius: float
    sunny: bool


def test_sdk_parse_helper_fills_a_pydantic_model(bedrock_client: openai.OpenAI,
                                                 upstream: MockUpstream):
    completion = bedrock_client.chat.completions.parse(
        model="claude-bedrock", messages=[{"role": "user", "content": "Weather as JSON."}],
        response_format=Weather,
    )
    choice = completion.choices[0]
    assert choice.message.parsed == Weather(city="Oslo", celsius=21.5, sunny=True)
    assert choice.finish_reason == "stop"
    assert not choice.message.tool_calls
    body = sent_body(upstream)
    assert "response_format" not in body
    tools = [t["toolSpec"] for t in body["toolConfig"]["tools"]]
    assert len(tools) == 1
    assert tools[0]["inputSchema"]["json"]["properties"].keys() == {"city", "celsius", "sunny"}
    assert body["toolConfig"]["toolChoice"] == {"tool": {"name": tools[0]["name"]}}


# -- failures -------------------------------------------------------------------


def test_throttled_bedrock_primary_falls_back_to_an_openai_model(
    bedrock_client: openai.OpenAI, upstream: MockUpstream
):
    raw = bedrock_client.chat.completions.with_raw_response.create(
        model="bedrock-throttled", messages=HELLO)

    assert raw.headers["x-switchyard-target"] == "backup/upstream-gpt"
    assert raw.headers["x-switchyard-model"] == "gpt-fallback"
    completion = raw.parse()
    assert completion.choices[0].message.content == EXPECTED_TEXT
    assert completion.id.startswith("chatcmpl-mock")
    # The 429 is retried once on the same target, then the fallback model is used.
    assert upstream.count(BEDROCK_THROTTLED) == 2
    assert raw.headers["x-switchyard-attempts"] == "3"
    fallback = upstream.last("/chat/completions")
    assert fallback.body["messages"] == HELLO  # the OpenAI request, untranslated
    assert fallback.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert "x-amz-date" not in fallback.headers
    assert "x-amz-security-token" not in fallback.headers


@pytest.mark.parametrize(
    ("model", "upstream_model", "exception", "status", "code", "says"),
    [
        ("bedrock-throttled-alone", BEDROCK_THROTTLED, openai.RateLimitError, 429,
         "ThrottlingException", BEDROCK_THROTTLED_MESSAGE),
        ("bedrock-unavailable-alone", BEDROCK_UNAVAILABLE, openai.InternalServerError, 503,
         "ServiceUnavailableException", "unable to process your request"),
    ],
    ids=["429", "503"],
)
def test_bedrock_errors_reach_the_sdk_as_its_exception_classes(
    bedrock_client: openai.OpenAI, upstream: MockUpstream, model: str, upstream_model: str,
    exception: type[openai.APIStatusError], status: int, code: str, says: str,
):
    with pytest.raises(exception) as info:
        bedrock_client.chat.completions.create(model=model, messages=HELLO)
    e = info.value
    assert e.status_code == status
    assert e.code == code
    assert says in e.message
    assert set(json.loads(e.response.content)["error"]) >= {"message", "type", "code"}
    assert upstream.count(upstream_model) == 2  # the router retried once
    assert e.response.headers["x-should-retry"] == "false"


def test_a_conversation_starting_with_the_assistant_is_bedrocks_400(
    bedrock_client: openai.OpenAI, upstream: MockUpstream
):
    with pytest.raises(openai.BadRequestError) as info:
        bedrock_client.chat.completions.create(model="claude-bedrock", messages=[
            {"role": "assistant", "content": "How can I help?"}, *HELLO])
    e = info.value
    assert e.status_code == 400
    assert e.type == "invalid_request_error"
    assert e.code == "ValidationException"
    assert "must start with a user message" in e.message
    assert upstream.count(BEDROCK_CLAUDE) == 1


def test_embeddings_on_a_bedrock_model_raise_bad_request(bedrock_client: openai.OpenAI,
                                                         upstream: MockUpstream):
    with pytest.raises(openai.BadRequestError) as info:
        bedrock_client.embeddings.create(model="claude-bedrock", input="hello")
    e = info.value
    assert e.code == "unsupported_endpoint"
    assert e.type == "invalid_request_error"
    assert "/v1/embeddings" in e.message
    assert upstream.requests == []


@pytest.fixture
def refused_signatures_expected(request: pytest.FixtureRequest) -> None:
    """Marks a test whose Bedrock requests are meant to fail the signature check."""


def test_a_refused_signature_does_not_hand_the_session_token_to_the_client(
    bedrock_client: openai.OpenAI, upstream: MockUpstream, refused_signatures_expected: None
):
    """With a wrong secret, AWS answers 403 InvalidSignatureException and
    spells out the canonical request it expected, signed headers included:
    the `x-amz-security-token` value is in that message. The router must
    not pass it on to the client."""
    with pytest.raises(openai.PermissionDeniedError) as info:
        bedrock_client.chat.completions.create(model="bedrock-bad-secret", messages=HELLO)
    e = info.value
    assert e.status_code == 403
    assert e.code == "InvalidSignatureException"
    refused = last_bedrock(upstream)
    assert refused.auth is not None and not refused.auth.ok
    assert BEDROCK_SESSION_TOKEN in (refused.auth.message or "")  # what AWS said
    text = json.dumps(dict(e.response.headers)) + "\n" + e.response.text
    for name, secret in SECRETS.items():
        assert secret not in text, f"the {name} is in the 403 the client got"


def test_no_secret_reaches_the_client(bedrock_client: openai.OpenAI, upstream: MockUpstream):
    """Answers whole, streamed, with a tool call, over an API key and as
    errors: no secret the router holds (nor the client's key) is in any
    header or body it sends back."""
    seen: list[tuple[str, str]] = []

    def keep(what: str, response: Any, body: str) -> None:
        seen.append((what, json.dumps(dict(response.headers)) + "\n" + body))

    for model in ("claude-bedrock", "llama-bedrock-key"):
        raw = bedrock_client.chat.completions.with_raw_response.create(model=model,
                                                                       messages=HELLO)
        keep(model, raw, raw.http_response.text)
    raw = bedrock_client.chat.completions.with_raw_response.create(
        model="claude-bedrock", messages=WEATHER_QUESTION, tools=[WEATHER_TOOL])
    keep("tool call", raw, raw.http_response.text)
    with bedrock_client.chat.completions.with_streaming_response.create(
            model="claude-bedrock", messages=HELLO, stream=True,
            stream_options={"include_usage": True}) as streamed:
        keep("stream", streamed, "".join(streamed.iter_text()))
    for model in ("bedrock-throttled-alone", "llama-bedrock"):
        with pytest.raises(openai.APIStatusError) as info:
            bedrock_client.chat.completions.create(model=model, messages=WEATHER_QUESTION,
                                                   tools=[WEATHER_TOOL])
        keep(model, info.value.response, info.value.response.text)

    for what, text in seen:
        for name, secret in SECRETS.items():
            assert secret not in text, f"the {name} is in the {what} answer"


# -- the mock's Bedrock API itself --------------------------------------------------

#: AWS's SigV4 test suite: the documented example keys, at 20150830T123600Z.
SUITE_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
SUITE_SCOPE = "20150830/us-east-1/service/aws4_request"
SUITE_HEADERS = [("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z")]


@pytest.mark.parametrize(
    ("method", "path", "headers", "signature"),
    [
        ("GET", "/", SUITE_HEADERS,
         "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
        ("POST", "/", SUITE_HEADERS,
         "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
        ("GET", "/\u1234", SUITE_HEADERS,
         "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"),
        ("GET", "/example space/", SUITE_HEADERS,
         "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741"),
        ("GET", "/", [SUITE_HEADERS[0], ("My-Header1", "value2"), ("My-Header1", "value2"),
                      ("My-Header1", "value1"), SUITE_HEADERS[1]],
         "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"),
    ],
    ids=["get-vanilla", "post-vanilla", "get-utf8", "get-space", "get-header-key-duplicate"],
)
def test_mock_sigv4_reproduces_the_aws_test_suite(method: str, path: str,
                                                 headers: list[tuple[str, str]],
                                                 signature: str):
    """The mock's verifier is independent of the router's signer; these are
    AWS's own published vectors, so the mock is right where they disagree."""
    signed = sorted({name.lower() for name, _ in headers})
    canonical = sigv4_canonical_request(method, path, "", headers, signed, b"")
    assert canonical is not None
    assert sigv4_signature(SUITE_SECRET, "20150830T123600Z", SUITE_SCOPE, canonical)[1] == \
        signature


def _signed_headers(upstream: MockUpstream, path: str, body: bytes, *,
                    secret: str = BEDROCK_SECRET_ACCESS_KEY,
                    canonical_path: str | None = None,
                    when: datetime | None = None) -> dict[str, str]:
    """Headers that sign a POST of `body` to `path` as an AWS SDK would;
    `canonical_path`: sign as if the path were that (a wrong signer)."""
    amz_date = (when or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    lines = [("Host", f"127.0.0.1:{upstream.port}"), ("Content-Type", "application/json"),
             ("X-Amz-Date", amz_date), ("X-Amz-Security-Token", BEDROCK_SESSION_TOKEN)]
    signed = sorted(name.lower() for name, _ in lines)
    canonical = sigv4_canonical_request("POST", path, "", lines, signed, body)
    assert canonical is not None
    if canonical_path is not None:
        lines_of_canonical = canonical.split("\n")
        lines_of_canonical[1] = canonical_path  # the canonical URI's line
        canonical = "\n".join(lines_of_canonical)
    scope = f"{amz_date[:8]}/{BEDROCK_REGION}/bedrock/aws4_request"
    signature = sigv4_signature(secret, amz_date, scope, canonical)[1]
    return {**dict(lines[1:]), "Authorization": (
        f"AWS4-HMAC-SHA256 Credential={BEDROCK_ACCESS_KEY_ID}/{scope}, "
        f"SignedHeaders={';'.join(signed)}, Signature={signature}")}


def _post_bedrock(upstream: MockUpstream, body: Any, *, model: str = BEDROCK_CLAUDE,
                  operation: str = "converse", sign: bool = True, tamper: bool = False,
                  headers: dict[str, str] | None = None, **signing: Any
                  ) -> tuple[int, dict[str, str], bytes]:
    path = f"/model/{quote(model, safe='')}/{operation}"
    data = json.dumps(body).encode()
    sent = dict(headers or {})
    if sign:
        sent.update(_signed_headers(upstream, path, data, **signing))
    if tamper:
        data = data.replace(b"ping", b"pong")
    request = urllib.request.Request(f"http://127.0.0.1:{upstream.port}{path}", data=data,
                                     headers={"content-type": "application/json", **sent})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=CLIENT_TIMEOUT_S) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


GOOD_BODY = {"messages": [{"role": "user", "content": [{"text": "ping from the compat suite"}]}]}
TOOLS = {"tools": [{"toolSpec": {"name": "get_weather", "inputSchema": {"json": {
    "type": "object", "properties": {"city": {"type": "string"}}}}}}]}
USE_TURN = {"role": "assistant", "content": [{"toolUse": {
    "toolUseId": "tooluse_1", "name": "get_weather", "input": {"city": "Oslo"}}}]}
RESULT_TURN = {"role": "user", "content": [{"toolResult": {
    "toolUseId": "tooluse_1", "content": [{"text": "12"}]}}]}


@pytest.mark.parametrize(
    ("body", "options", "status", "error_type", "says"),
    [
        (GOOD_BODY, {"sign": False}, 403, "MissingAuthenticationTokenException",
         "Missing Authentication Token"),
        (GOOD_BODY, {"secret": "not-the-secret"}, 403, "InvalidSignatureException",
         "signature we calculated does not match"),
        (GOOD_BODY, {"tamper": True}, 403, "InvalidSignatureException",
         "signature we calculated does not match"),
        # Signed over the path as sent, not re-encoded: what AWS does for S3 only.
        (GOOD_BODY, {"canonical_path": "/model/anthropic.claude-3-5-haiku-20241022-v1%3A0"
                                       "/converse"},
         403, "InvalidSignatureException", "signature we calculated does not match"),
        (GOOD_BODY, {"when": datetime.now(timezone.utc) - timedelta(minutes=20)}, 403,
         "InvalidSignatureException", "Signature expired"),
        (GOOD_BODY, {"sign": False, "headers": {"Authorization": "Bearer ABSK-wrong"}}, 403,
         "UnrecognizedClientException", "Invalid API Key"),
        (GOOD_BODY, {"model": "anthropic.claude-nope-v1:0"}, 400, "ValidationException",
         "The provided model identifier is invalid."),
        ({"messages": [{"role": "assistant", "content": [{"text": "hi"}]},
                       *GOOD_BODY["messages"]]}, {}, 400, "ValidationException",
         "must start with a user message"),
        ({"messages": [*GOOD_BODY["messages"], *GOOD_BODY["messages"]]}, {}, 400,
         "ValidationException", "must alternate between user and assistant"),
        ({"messages": [{"role": "user", "content": [{"text": " "}]}]}, {}, 400,
         "ValidationException", "is blank"),
        ({"messages": [*GOOD_BODY["messages"], USE_TURN, RESULT_TURN]}, {}, 400,
         "ValidationException", "toolConfig field must be defined"),
        ({"messages": [*GOOD_BODY["messages"], USE_TURN, {"role": "user", "content": [
            {"text": "no result"}]}], "toolConfig": TOOLS}, {}, 400, "ValidationException",
         "Expected toolResult blocks at messages.2.content for the following Ids: tooluse_1"),
        ({"messages": [{"role": "user", "content": RESULT_TURN["content"]}],
          "toolConfig": TOOLS}, {}, 400, "ValidationException",
         "exceeds the number of toolUse blocks"),
        ({"messages": [*GOOD_BODY["messages"], {"role": "assistant", "content": [{"toolUse": {
            **USE_TURN["content"][0]["toolUse"], "toolUseId": "call_" + "x" * 60}}]},
            {"role": "user", "content": [{"toolResult": {
                **RESULT_TURN["content"][0]["toolResult"], "toolUseId": "call_" + "x" * 60}}]}],
          "toolConfig": TOOLS}, {}, 400, "ValidationException",
         "Member must have length less than or equal to 64"),
        ({**GOOD_BODY, "inferenceConfig": {"temperature": 1.5}}, {}, 400,
         "ValidationException", "Member must have value less than or equal to 1"),
        ({**GOOD_BODY, "toolConfig": TOOLS}, {"model": BEDROCK_LLAMA}, 400,
         "ValidationException", "doesn't support tool use"),
        (GOOD_BODY, {"model": BEDROCK_THROTTLED}, 429, "ThrottlingException",
         "Too many requests"),
    ],
    ids=["unsigned", "wrong-secret", "tampered-body", "path-encoded-once", "expired",
         "wrong-api-key", "unknown-model", "assistant-first", "not-alternating", "blank-text",
         "tool-use-without-tool-config", "unanswered-tool-use", "stray-tool-result",
         "long-tool-use-id", "temperature", "llama-tools", "throttled"],
)
def test_mock_refuses_what_bedrock_refuses(upstream: MockUpstream, body: Any,
                                           options: dict[str, Any], status: int,
                                           error_type: str, says: str):
    """The checks above rely on the mock being as strict as the real API."""
    got, headers, answer = _post_bedrock(upstream, body, **options)
    assert got == status
    named = {k.lower(): v for k, v in headers.items()}["x-amzn-errortype"]
    assert named.split(":")[0] == error_type
    assert says in json.loads(answer)["message"]
    auth = upstream.requests[-1].auth
    assert auth is not None and auth.ok == (status != 403)


def decode_eventstream(data: bytes) -> list[tuple[dict[str, str], Any]]:
    """AWS event-stream frames (both CRCs checked), written here apart from
    the mock's encoder: (headers, JSON payload) each."""
    frames = []
    while data:
        total, headers_length = struct.unpack(">II", data[:8])
        assert struct.unpack(">I", data[8:12])[0] == zlib.crc32(data[:8])
        frame, data = data[:total], data[total:]
        assert struct.unpack(">I", frame[-4:])[0] == zlib.crc32(frame[:-4])
        raw, headers = frame[12:12 + headers_length], {}
        while raw:
            n = raw[0]
            name = raw[1:1 + n].decode()
            assert raw[1 + n] == 7  # string
            (size,) = struct.unpack(">H", raw[2 + n:4 + n])
            headers[name] = raw[4 + n:4 + n + size].decode()
            raw = raw[4 + n + size:]
        frames.append((headers, json.loads(frame[12 + headers_length:-4])))
    return frames


def test_mock_streams_converse_as_aws_event_stream_frames(upstream: MockUpstream):
    got, headers, data = _post_bedrock(upstream, {**GOOD_BODY, "toolConfig": TOOLS},
                                       operation="converse-stream")
    assert got == 200
    assert headers["Content-Type"] == "application/vnd.amazon.eventstream"
    frames = decode_eventstream(data)
    assert all(h[":message-type"] == "event" and h[":content-type"] == "application/json"
               for h, _ in frames)
    assert all(isinstance(payload.pop("p"), str) for _, payload in frames)  # the padding
    kinds = [h[":event-type"] for h, _ in frames]
    assert kinds[0] == "messageStart" and kinds[-2:] == ["messageStop", "metadata"]
    starts = [p for h, p in frames if h[":event-type"] == "contentBlockStart"]
    assert starts == [{"contentBlockIndex": 1, "start": {"toolUse": {
        "toolUseId": starts[0]["start"]["toolUse"]["toolUseId"], "name": "get_weather"}}}]
    text = "".join(p["delta"].get("text", "") for h, p in frames
                   if h[":event-type"] == "contentBlockDelta")
    arguments = "".join(p["delta"].get("toolUse", {}).get("input", "") for h, p in frames
                        if h[":event-type"] == "contentBlockDelta")
    assert text == TOOL_PREAMBLE
    assert json.loads(arguments) == {"city": "Oslo"}
    assert frames[-2][1] == {"stopReason": "tool_use"}
    assert frames[-1][1]["usage"]["totalTokens"] == (frames[-1][1]["usage"]["inputTokens"]
                                                     + frames[-1][1]["usage"]["outputTokens"])
    assert upstream.requests[-1].auth.ok


def test_mock_sends_a_stream_exception_as_an_exception_frame(upstream: MockUpstream):
    got, _, data = _post_bedrock(upstream, GOOD_BODY, model=BEDROCK_STREAM_EXCEPTION,
                                 operation="converse-stream")
    assert got == 200
    frames = decode_eventstream(data)
    assert [h.get(":event-type") for h, _ in frames[:2]] == ["messageStart",
                                                            "contentBlockDelta"]
    headers, payload = frames[-1]
    assert headers[":message-type"] == "exception"
    assert headers[":exception-type"] == "modelStreamErrorException"
    assert payload["message"] == BEDROCK_STREAM_ERROR_MESSAGE


def test_mock_takes_a_bedrock_api_key(upstream: MockUpstream):
    got, _, answer = _post_bedrock(upstream, GOOD_BODY, model=BEDROCK_LLAMA, sign=False,
                                   headers={"Authorization": f"Bearer {BEDROCK_API_KEY}"})
    assert got == 200
    assert json.loads(answer)["output"]["message"]["content"] == [{"text": EXPECTED_TEXT}]
    assert upstream.requests[-1].auth.scheme == "bearer"
