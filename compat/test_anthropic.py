"""`provider: anthropic` through the official OpenAI SDK.

The application speaks OpenAI (`openai.OpenAI` on the Anthropic router from
`conftest.py`); the router translates each chat request to Anthropic's
Messages API and each answer back. The mock's `/v1/messages` speaks
Anthropic's wire format as documented (PROTOCOLS.md 7.1-7.5) and refuses
what the real API refuses, so a translation that leaks an OpenAI field or
breaks a tool round trip fails here. Each test checks both what the SDK made
of the answer and what arrived at the mock.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from typing import Any

import openai
import pydantic
import pytest

from conftest import (
    ANTHROPIC_DEFAULT_MAX_TOKENS,
    ANTHROPIC_KEY,
    CLIENT_KEY,
    CLIENT_TIMEOUT_S,
    UPSTREAM_KEY,
)
from mock_upstream import (
    ANTHROPIC_MODEL,
    ANTHROPIC_OVERLOADED,
    CACHE_CREATION_INPUT_TOKENS,
    CACHE_READ_INPUT_TOKENS,
    TOOL_PREAMBLE,
    MockUpstream,
    messages_input_tokens,
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


def messages_request(upstream: MockUpstream) -> Any:
    """The body of the last request the mock's Anthropic API received."""
    received = upstream.last("/v1/messages")
    assert received.method == "POST"
    return received.body


def expected_prompt_tokens(body: Any) -> int:
    """OpenAI `prompt_tokens` for the mock's answer to `body`: Anthropic's
    `input_tokens` excludes cache writes and reads, so all three add up."""
    return messages_input_tokens(body) + CACHE_CREATION_INPUT_TOKENS + CACHE_READ_INPUT_TOKENS


# -- chat -----------------------------------------------------------------------


def test_chat_completion_comes_back_in_the_openai_shape(claude_client: openai.OpenAI,
                                                        upstream: MockUpstream):
    completion = claude_client.chat.completions.create(model="claude", messages=HELLO)

    assert completion.object == "chat.completion"
    assert completion.id.startswith("msg_mock")  # Anthropic's message id
    assert len(completion.choices) == 1
    choice = completion.choices[0]
    assert choice.index == 0
    assert choice.message.role == "assistant"
    assert choice.message.content == EXPECTED_TEXT
    assert not choice.message.tool_calls
    assert choice.finish_reason == "stop"  # from end_turn
    usage = completion.usage
    assert usage is not None
    assert usage.prompt_tokens == expected_prompt_tokens(messages_request(upstream))
    assert usage.completion_tokens == len(EXPECTED_TEXT.split())
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.prompt_tokens_details.cached_tokens == CACHE_READ_INPUT_TOKENS
    assert upstream.count(ANTHROPIC_MODEL) == 1


def test_what_goes_up_is_a_messages_request(claude_client: openai.OpenAI,
                                            upstream: MockUpstream):
    claude_client.chat.completions.create(
        model="claude",
        messages=[{"role": "system", "content": "Be terse."}, *HELLO],
        temperature=0.25, stop=["\n\n"], user="user-42",
    )

    received = upstream.last("/v1/messages")
    assert received.path == "/v1/messages"
    assert received.headers["x-api-key"] == ANTHROPIC_KEY  # the router's key
    assert "authorization" not in received.headers
    assert CLIENT_KEY not in json.dumps(received.headers)
    assert received.headers["anthropic-version"] == "2023-06-01"
    assert received.headers["content-type"].startswith("application/json")
    assert received.body == {
        "model": ANTHROPIC_MODEL,  # renamed on the way up
        "system": "Be terse.",  # hoisted out of the messages
        "messages": [{"role": "user", "content": HELLO[0]["content"]}],
        "max_tokens": ANTHROPIC_DEFAULT_MAX_TOKENS,  # required there; the client sent none
        "temperature": 0.25,
        "stop_sequences": ["\n\n"],
        "metadata": {"user_id": "user-42"},
    }


def test_system_and_developer_messages_join_into_one_system_prompt(
    claude_client: openai.OpenAI, upstream: MockUpstream
):
    completion = claude_client.chat.completions.create(model="claude", messages=[
        {"role": "system", "content": "Be terse."},
        {"role": "developer", "content": [{"type": "text", "text": "Answer in English."}]},
        *HELLO,
    ])
    assert completion.choices[0].message.content == EXPECTED_TEXT
    body = messages_request(upstream)
    assert body["system"] == "Be terse.\n\nAnswer in English."
    assert [m["role"] for m in body["messages"]] == ["user"]


@pytest.mark.parametrize(
    ("extra", "sent"),
    [
        ({}, ANTHROPIC_DEFAULT_MAX_TOKENS),
        ({"max_tokens": 50}, 50),
        ({"max_completion_tokens": 60}, 60),
        ({"max_tokens": 50, "max_completion_tokens": 60}, 60),
    ],
)
def test_max_tokens_goes_up_from_either_field_or_the_default(
    claude_client: openai.OpenAI, upstream: MockUpstream, extra: dict[str, int], sent: int
):
    claude_client.chat.completions.create(model="claude", messages=HELLO, **extra)
    body = messages_request(upstream)
    assert body["max_tokens"] == sent
    assert "max_completion_tokens" not in body


def test_temperature_above_anthropics_range_is_clamped(claude_client: openai.OpenAI,
                                                       upstream: MockUpstream):
    completion = claude_client.chat.completions.create(model="claude", messages=HELLO,
                                                       temperature=1.5)
    assert completion.choices[0].message.content == EXPECTED_TEXT
    assert messages_request(upstream)["temperature"] == 1.0


@pytest.mark.parametrize(
    ("extra", "content", "finish_reason"),
    [
        ({"max_tokens": 3}, "Hello from the", "length"),  # Anthropic: max_tokens
        ({"stop": " mock"}, "Hello from the", "stop"),  # Anthropic: stop_sequence
    ],
)
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_stop_reasons_become_finish_reasons(claude_client: openai.OpenAI, extra: dict[str, Any],
                                            content: str, finish_reason: str, stream: bool):
    if stream:
        # Not the `stream()` helper: it raises LengthFinishReasonError on "length".
        chunks = [c for c in claude_client.chat.completions.create(
            model="claude", messages=HELLO, stream=True, **extra) if c.choices]
        text = "".join(c.choices[0].delta.content or "" for c in chunks)
        finish = chunks[-1].choices[0].finish_reason
    else:
        completion = claude_client.chat.completions.create(model="claude", messages=HELLO,
                                                           **extra)
        text = completion.choices[0].message.content
        finish = completion.choices[0].finish_reason
    assert text == content
    assert finish == finish_reason


def test_image_data_url_goes_up_as_a_base64_image_block(claude_client: openai.OpenAI,
                                                        upstream: MockUpstream):
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n not really a picture").decode()
    completion = claude_client.chat.completions.create(model="claude", messages=[{
        "role": "user",
        "content": [
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}",
                                                "detail": "low"}},
        ],
    }])

    assert completion.choices[0].message.content == (
        "Hello from the mock upstream! You said: What is in this picture?")
    assert messages_request(upstream)["messages"] == [{"role": "user", "content": [
        {"type": "text", "text": "What is in this picture?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png}},
    ]}]


# -- streams --------------------------------------------------------------------


def test_stream_with_include_usage_adds_up_and_ends_with_usage(claude_client: openai.OpenAI,
                                                               upstream: MockUpstream):
    stream = claude_client.chat.completions.create(
        model="claude", messages=HELLO, stream=True, stream_options={"include_usage": True},
    )
    chunks = list(stream)

    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert {c.id for c in chunks} == {chunks[0].id}
    assert chunks[0].id.startswith("msg_mock")
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == EXPECTED_TEXT
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 1
    with_choices = [c for c in chunks if c.choices]
    assert [c.choices[0].finish_reason for c in with_choices][-1] == "stop"
    assert all(c.choices[0].finish_reason is None for c in with_choices[:-1])
    final = chunks[-1]
    assert final.choices == []
    assert final.usage is not None
    body = messages_request(upstream)
    assert final.usage.prompt_tokens == expected_prompt_tokens(body)
    assert final.usage.completion_tokens == len(EXPECTED_TEXT.split())
    assert final.usage.total_tokens == final.usage.prompt_tokens + final.usage.completion_tokens
    assert all(c.usage is None for c in chunks[:-1])
    assert body["stream"] is True
    assert "stream_options" not in body  # not an Anthropic field


def test_stream_without_include_usage_has_no_usage(claude_client: openai.OpenAI):
    chunks = list(claude_client.chat.completions.create(model="claude", messages=HELLO,
                                                        stream=True))

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == EXPECTED_TEXT
    assert all(c.choices for c in chunks)  # no usage-only chunk
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_sdk_stream_helper_accumulates_the_text(claude_client: openai.OpenAI):
    with claude_client.chat.completions.stream(model="claude", messages=HELLO) as stream:
        deltas = [e.delta for e in stream if e.type == "content.delta"]
        final = stream.get_final_completion()
    assert "".join(deltas) == EXPECTED_TEXT
    assert final.choices[0].message.content == EXPECTED_TEXT
    assert final.choices[0].finish_reason == "stop"


def test_error_event_after_the_first_token_raises_api_error(claude_client: openai.OpenAI,
                                                            upstream: MockUpstream):
    """Anthropic's mid-stream `error` event (after the commit point) reaches
    the SDK as an in-band error, which it raises; never a short answer."""
    stream = claude_client.chat.completions.create(model="claude-cut", messages=HELLO,
                                                   stream=True)
    text = []
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            if chunk.choices:
                text.append(chunk.choices[0].delta.content or "")
    e = info.value
    assert not isinstance(e, openai.APIStatusError)  # in-band, after the 200
    assert e.message == "Overloaded"
    assert e.code == "overloaded_error"
    assert "".join(text) == EXPECTED_TEXT.split(" ")[0]  # the one delta before the error


# -- tools ----------------------------------------------------------------------


def test_tool_call_comes_back_with_parsed_arguments(claude_client: openai.OpenAI,
                                                    upstream: MockUpstream):
    completion = claude_client.chat.completions.create(
        model="claude", messages=WEATHER_QUESTION, tools=[WEATHER_TOOL],
    )

    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == TOOL_PREAMBLE  # the text block before tool_use
    assert len(choice.message.tool_calls) == 1
    call = choice.message.tool_calls[0]
    assert call.type == "function"
    assert call.id.startswith("toolu_mock")
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Oslo"}
    body = messages_request(upstream)
    assert body["tools"] == [{
        "name": "get_weather",
        "description": "Current weather in a city.",
        "input_schema": WEATHER_TOOL["function"]["parameters"],
    }]
    assert body.get("tool_choice", {"type": "auto"}) == {"type": "auto"}


@pytest.mark.parametrize(
    ("tool_choice", "sent", "called"),
    [
        ("auto", {"type": "auto"}, "get_weather"),
        ("required", {"type": "any"}, "get_weather"),
        ({"type": "function", "function": {"name": "get_time"}},
         {"type": "tool", "name": "get_time"}, "get_time"),
        ("none", {"type": "none"}, None),
    ],
)
def test_tool_choice_is_mapped(claude_client: openai.OpenAI, upstream: MockUpstream,
                               tool_choice: Any, sent: dict[str, str], called: str | None):
    completion = claude_client.chat.completions.create(
        model="claude", messages=WEATHER_QUESTION, tools=[WEATHER_TOOL, TIME_TOOL],
        tool_choice=tool_choice,
    )

    assert messages_request(upstream)["tool_choice"] == sent
    message = completion.choices[0].message
    if called is None:
        assert not message.tool_calls
        assert message.content.startswith("Hello from the mock upstream!")
        assert completion.choices[0].finish_reason == "stop"
    else:
        assert [c.function.name for c in message.tool_calls] == [called]
        assert completion.choices[0].finish_reason == "tool_calls"
    if called == "get_time":
        arguments = json.loads(message.tool_calls[0].function.arguments)
        assert arguments == {"zone": "Oslo", "hours24": True}  # fits the schema


def test_parallel_tool_calls_false_disables_parallel_tool_use(claude_client: openai.OpenAI,
                                                              upstream: MockUpstream):
    claude_client.chat.completions.create(
        model="claude", messages=WEATHER_QUESTION, tools=[WEATHER_TOOL],
        parallel_tool_calls=False,
    )
    assert messages_request(upstream)["tool_choice"] == {
        "type": "auto", "disable_parallel_tool_use": True}


def test_streamed_tool_call_deltas_use_openai_indexes(claude_client: openai.OpenAI):
    """The tool_use block is Anthropic's block 1 (after the text); OpenAI's
    `tool_calls[].index` counts tool calls, so it must be 0."""
    stream = claude_client.chat.completions.create(
        model="claude", messages=WEATHER_QUESTION, tools=[WEATHER_TOOL], stream=True,
    )
    text, calls, finish = "", {}, None
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
        finish = chunk.choices[0].finish_reason or finish

    assert text == TOOL_PREAMBLE
    assert finish == "tool_calls"
    assert list(calls) == [0]
    assert calls[0]["id"].startswith("toolu_mock")
    assert calls[0]["name"] == "get_weather"
    assert json.loads(calls[0]["arguments"]) == {"city": "Oslo"}


def test_sdk_stream_helper_accumulates_the_tool_call(claude_client: openai.OpenAI):
    with claude_client.chat.completions.stream(
        model="claude", messages=WEATHER_QUESTION, tools=[WEATHER_TOOL],
    ) as stream:
        final = stream.get_final_completion()

    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == TOOL_PREAMBLE
    assert len(choice.message.tool_calls) == 1
    call = choice.message.tool_calls[0]
    assert call.id.startswith("toolu_mock")
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Oslo"}


@pytest.mark.parametrize("tool_choice", ["auto", "required"])
def test_tool_round_trip_goes_up_as_tool_use_and_tool_result_blocks(
    claude_client: openai.OpenAI, upstream: MockUpstream, tool_choice: str
):
    """With `auto` the assistant turn has a text block before its tool call;
    with `required` only the call (the SDK message's `content` is None)."""
    messages: list[Any] = list(WEATHER_QUESTION)
    first = claude_client.chat.completions.create(model="claude", messages=messages,
                                                  tools=[WEATHER_TOOL], tool_choice=tool_choice)
    call = first.choices[0].message.tool_calls[0]
    preamble = [{"type": "text", "text": TOOL_PREAMBLE}] if tool_choice == "auto" else []
    assert first.choices[0].message.content == (TOOL_PREAMBLE if preamble else None)

    messages.append(first.choices[0].message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": "12 degrees and clear"})
    second = claude_client.chat.completions.create(model="claude", messages=messages,
                                                   tools=[WEATHER_TOOL])

    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content == "The tool said: 12 degrees and clear"
    assert not second.choices[0].message.tool_calls
    sent = messages_request(upstream)["messages"]
    assert sent[0] == {"role": "user", "content": WEATHER_QUESTION[0]["content"]}
    assert sent[1]["role"] == "assistant"
    assert sent[1]["content"] == [
        *preamble,
        {"type": "tool_use", "id": call.id, "name": "get_weather", "input": {"city": "Oslo"}},
    ]
    assert sent[2]["role"] == "user"
    assert len(sent[2]["content"]) == 1
    result = sent[2]["content"][0]
    assert result["type"] == "tool_result"
    assert result["tool_use_id"] == call.id
    assert result["content"] in ("12 degrees and clear",
                                 [{"type": "text", "text": "12 degrees and clear"}])
    assert len(sent) == 3


def test_tool_result_and_a_following_user_message_share_one_user_turn(
    claude_client: openai.OpenAI, upstream: MockUpstream
):
    """Anthropic has no tool role: the result and the user's next words merge
    into one user turn, the tool_result block first, as Anthropic requires."""
    messages: list[Any] = list(WEATHER_QUESTION)
    first = claude_client.chat.completions.create(model="claude", messages=messages,
                                                  tools=[WEATHER_TOOL])
    call = first.choices[0].message.tool_calls[0]
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "12 degrees and clear"},
        {"role": "user", "content": "And tomorrow?"},
    ]
    second = claude_client.chat.completions.create(model="claude", messages=messages,
                                                   tools=[WEATHER_TOOL])

    assert second.choices[0].message.content == "The tool said: 12 degrees and clear"
    sent = messages_request(upstream)["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    blocks = sent[2]["content"]
    assert [b["type"] for b in blocks] == ["tool_result", "text"]
    assert blocks[0]["tool_use_id"] == call.id
    assert blocks[1]["text"] == "And tomorrow?"


def test_anthropic_400_reaches_the_sdk_as_bad_request(claude_client: openai.OpenAI,
                                                      upstream: MockUpstream):
    """A tool result for a call the conversation never made: the translation
    passes it on, Anthropic refuses it, and the SDK gets OpenAI's error shape."""
    with pytest.raises(openai.BadRequestError) as info:
        claude_client.chat.completions.create(model="claude", messages=[
            *HELLO, {"role": "tool", "tool_call_id": "toolu_nowhere", "content": "12"},
        ])
    e = info.value
    assert e.type == "invalid_request_error"
    assert e.code == "invalid_request_error"  # Anthropic's error type
    assert "unexpected `tool_use_id`" in e.message
    assert set(json.loads(e.response.content)["error"]) == {"message", "type", "param", "code"}
    assert upstream.count(ANTHROPIC_MODEL) == 1  # a 400 is not retried


# -- failures -------------------------------------------------------------------


def test_overloaded_anthropic_primary_falls_back_to_an_openai_target(
    claude_client: openai.OpenAI, upstream: MockUpstream
):
    raw = claude_client.chat.completions.with_raw_response.create(
        model="claude-overloaded", messages=HELLO)

    assert raw.headers["x-switchyard-target"] == "mockup/upstream-gpt"
    assert raw.headers["x-switchyard-model"] == "gpt-fallback"
    completion = raw.parse()
    assert completion.choices[0].message.content == EXPECTED_TEXT
    assert completion.id.startswith("chatcmpl-mock")
    # 529 is retried once on the same target, then the fallback model is used.
    assert upstream.count(ANTHROPIC_OVERLOADED) == 2
    assert raw.headers["x-switchyard-attempts"] == "3"
    fallback = upstream.last("/chat/completions")
    assert fallback.body["model"] == "upstream-gpt"
    assert fallback.body["messages"] == HELLO  # the OpenAI request, untranslated
    assert fallback.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert "x-api-key" not in fallback.headers


def test_overloaded_anthropic_without_fallback_raises_server_error(
    claude_client: openai.OpenAI, upstream: MockUpstream
):
    with pytest.raises(openai.InternalServerError) as info:
        claude_client.chat.completions.create(model="claude-overloaded-alone", messages=HELLO)
    e = info.value
    assert e.status_code in (503, 529)  # PROTOCOLS.md 7.5: either is fine for the SDK
    assert e.code == "overloaded_error"
    assert e.type == "upstream_error"
    assert e.body["message"] == "Overloaded"
    assert e.response.headers["x-should-retry"] == "false"  # the router retried already
    assert upstream.count(ANTHROPIC_OVERLOADED) == 2


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"web_search_options": {}}, "web_search_options"),
    ],
)
def test_unsupported_parameter_raises_bad_request(claude_client: openai.OpenAI,
                                                  upstream: MockUpstream,
                                                  extra: dict[str, Any], field: str):
    with pytest.raises(openai.BadRequestError) as info:
        claude_client.chat.completions.create(model="claude", messages=HELLO, **extra)
    e = info.value
    assert e.code == "unsupported_parameter"
    assert e.type == "invalid_request_error"
    assert f"`{field}`" in e.message
    assert upstream.requests == []  # nothing went up


def test_unsupported_parameter_names_it_in_param(claude_client: openai.OpenAI):
    with pytest.raises(openai.BadRequestError) as info:
        claude_client.chat.completions.create(model="claude", messages=HELLO, n=2)
    assert info.value.param == "n"


def test_unsupported_parameter_message_reads_cleanly(claude_client: openai.OpenAI):
    with pytest.raises(openai.BadRequestError) as info:
        claude_client.chat.completions.create(model="claude", messages=HELLO, n=2)
    assert ".." not in info.value.message


def test_embeddings_on_an_anthropic_model_raise_bad_request(claude_client: openai.OpenAI,
                                                            upstream: MockUpstream):
    with pytest.raises(openai.BadRequestError) as info:
        claude_client.embeddings.create(model="claude", input="hello")
    e = info.value
    assert e.code == "unsupported_endpoint"
    assert e.type == "invalid_request_error"
    assert "/v1/embeddings" in e.message
    assert upstream.requests == []


# -- the mock's Anthropic API itself ----------------------------------------------


def _post_messages(upstream: MockUpstream, body: Any, headers: dict[str, str]) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{upstream.port}/v1/messages", data=json.dumps(body).encode(),
        headers={"content-type": "application/json", **headers},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=CLIENT_TIMEOUT_S) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


GOOD_HEADERS = {"x-api-key": "sk-ant-direct", "anthropic-version": "2023-06-01"}
GOOD_BODY = {"model": ANTHROPIC_MODEL, "max_tokens": 16, "messages": HELLO}


@pytest.mark.parametrize(
    ("headers", "body", "status", "error_type", "says"),
    [
        ({"anthropic-version": "2023-06-01"}, GOOD_BODY, 401, "authentication_error",
         "x-api-key"),
        ({"x-api-key": "k"}, GOOD_BODY, 400, "invalid_request_error", "anthropic-version"),
        (GOOD_HEADERS, {**GOOD_BODY, "max_tokens": None}, 400, "invalid_request_error",
         "max_tokens"),
        (GOOD_HEADERS, {k: v for k, v in GOOD_BODY.items() if k != "max_tokens"}, 400,
         "invalid_request_error", "max_tokens: Field required"),
        (GOOD_HEADERS, {**GOOD_BODY, "messages": [{"role": "system", "content": "x"}, *HELLO]},
         400, "invalid_request_error", 'Unexpected role "system"'),
        (GOOD_HEADERS, {**GOOD_BODY, "stream_options": {"include_usage": True}}, 400,
         "invalid_request_error", "stream_options: Extra inputs are not permitted"),
        (GOOD_HEADERS, {**GOOD_BODY, "temperature": 1.5}, 400, "invalid_request_error",
         "temperature"),
        (GOOD_HEADERS, {**GOOD_BODY, "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}]},
         400, "invalid_request_error", "'image_url'"),
        (GOOD_HEADERS, {**GOOD_BODY, "messages": [*HELLO, {"role": "assistant", "content": [
            {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}]},
            {"role": "user", "content": "no result"}]},
         400, "invalid_request_error", "without `tool_result` blocks"),
        (GOOD_HEADERS, {**GOOD_BODY, "model": ANTHROPIC_OVERLOADED}, 529, "overloaded_error",
         "Overloaded"),
    ],
    ids=["no-key", "no-version", "max-tokens-null", "no-max-tokens", "system-role",
         "openai-field", "temperature", "openai-part", "unanswered-tool-use", "overloaded"],
)
def test_mock_refuses_what_anthropic_refuses(upstream: MockUpstream, headers: dict[str, str],
                                             body: Any, status: int, error_type: str, says: str):
    """The checks above rely on the mock being as strict as the real API."""
    got, answer = _post_messages(upstream, body, headers)
    assert got == status
    assert answer["type"] == "error"
    assert answer["error"]["type"] == error_type
    assert says in answer["error"]["message"]
    assert answer["request_id"].startswith("req_")


def test_mock_answers_a_valid_request_as_anthropic_does(upstream: MockUpstream):
    got, answer = _post_messages(upstream, GOOD_BODY, GOOD_HEADERS)
    assert got == 200
    assert answer["type"] == "message"
    assert answer["role"] == "assistant"
    assert answer["content"] == [{"type": "text", "text": "Hello from the mock upstream!"
                                  " You said: ping from the compat suite"}]
    assert answer["stop_reason"] == "end_turn"
    assert answer["usage"]["input_tokens"] == messages_input_tokens(GOOD_BODY)
    assert upstream.last("/v1/messages").headers["x-api-key"] == "sk-ant-direct"


class Weather(pydantic.BaseModel):
    city: str
    celsius: float
    sunny: bool


def test_sdk_parse_helper_fills_a_pydantic_model_through_a_forced_answer_tool(
    claude_client: openai.OpenAI, upstream: MockUpstream
):
    # json_schema has no Anthropic equivalent: it goes up as one forced tool
    # whose call comes back as the message's content (docs/providers.md).
    completion = claude_client.chat.completions.parse(
        model="claude", messages=[{"role": "user", "content": "Weather as JSON."}],
        response_format=Weather,
    )
    choice = completion.choices[0]
    assert choice.message.parsed == Weather(city="Oslo", celsius=21.5, sunny=True)
    assert choice.finish_reason == "stop"
    assert not choice.message.tool_calls
    sent = upstream.last("/v1/messages").body
    assert [t["name"] for t in sent["tools"]] == ["switchyard_json_answer"]
    assert sent["tool_choice"]["type"] == "tool"
    assert sent["tool_choice"]["name"] == "switchyard_json_answer"
    assert sent["tools"][0]["input_schema"]["properties"].keys() == {"city", "celsius", "sunny"}
    assert "response_format" not in sent

