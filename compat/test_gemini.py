"""`provider: gemini` through the official OpenAI SDK.

The application speaks OpenAI (`openai.OpenAI` on the Gemini router from
`conftest.py`); the router translates each chat request to Gemini's
`generateContent` (`:streamGenerateContent?alt=sse` when streamed) and each
answer back. The mock's `/v1beta/models/...` speaks Gemini's wire format as
documented and refuses what Gemini refuses (unknown fields, OpenAPI-only
schemas, roles, turn order, Gemini 3's thought signatures), so a translation
that leaks an OpenAI field or loses a signature fails here. Each test checks
both what the SDK made of the answer and what arrived at the mock.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from typing import Any

import openai
import pydantic
import pytest

from conftest import CLIENT_KEY, CLIENT_TIMEOUT_S, GEMINI_WRONG_KEY, SECRETS, UPSTREAM_KEY
from mock_upstream import (
    GEMINI_3_MODEL,
    GEMINI_HANG,
    GEMINI_KEY,
    GEMINI_MODEL,
    GEMINI_OVERLOADED,
    GEMINI_OVERLOADED_MESSAGE,
    GEMINI_QUOTA,
    GEMINI_SLOW,
    GEMINI_THOUGHTS_TOKENS,
    PARALLEL_TRIGGER,
    MockUpstream,
    Received,
    gemini_prompt_tokens,
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

#: How long a test waits for the mock to see the router hang up.
DROP_DEADLINE_S = 5.0


def gemini_requests(upstream: MockUpstream) -> list[Received]:
    return [r for r in upstream.requests if r.path.startswith("/v1beta/models/")]


def last_gemini(upstream: MockUpstream) -> Received:
    """The last request the mock's Gemini API received."""
    sent = gemini_requests(upstream)
    assert sent, "the mock's Gemini API received no request"
    assert sent[-1].method == "POST"
    return sent[-1]


def sent_body(upstream: MockUpstream) -> Any:
    return last_gemini(upstream).body


def answer_words(text: str) -> int:
    """`candidatesTokenCount` the mock reports for a text answer."""
    return len(text.split())


def read_sse_error(stream: Any) -> tuple[str, openai.APIError]:
    """Reads a streamed answer until the SDK raises; the text before, and the error."""
    text = []
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            if chunk.choices:
                text.append(chunk.choices[0].delta.content or "")
    return "".join(text), info.value


# -- chat -----------------------------------------------------------------------


def test_chat_completion_comes_back_in_the_openai_shape(gemini_client: openai.OpenAI,
                                                        upstream: MockUpstream):
    completion = gemini_client.chat.completions.create(model="gemini-2.5-flash",
                                                       messages=HELLO)

    assert completion.object == "chat.completion"
    assert completion.id  # Gemini's responseId, or one of the router's
    assert completion.model == GEMINI_MODEL
    assert len(completion.choices) == 1
    choice = completion.choices[0]
    assert choice.index == 0
    assert choice.message.role == "assistant"
    assert choice.message.content == EXPECTED_TEXT
    assert not choice.message.tool_calls
    assert choice.finish_reason == "stop"  # from STOP
    usage = completion.usage
    assert usage is not None
    assert usage.prompt_tokens == gemini_prompt_tokens(sent_body(upstream))
    assert upstream.count(GEMINI_MODEL) == 1


def test_what_goes_up_is_a_generate_content_request(gemini_client: openai.OpenAI,
                                                    upstream: MockUpstream):
    gemini_client.chat.completions.create(
        model="gemini-2.5-flash",
        messages=[{"role": "system", "content": "Be terse."}, *HELLO],
        temperature=0.25, top_p=0.5, max_tokens=50, stop=["\n\n"],
    )

    received = last_gemini(upstream)
    assert received.path == f"/v1beta/models/{GEMINI_MODEL}:generateContent"
    assert received.headers["x-goog-api-key"] == GEMINI_KEY  # the router's key
    assert "authorization" not in received.headers
    assert CLIENT_KEY not in json.dumps(received.headers)
    assert received.headers["content-type"].startswith("application/json")
    body = received.body
    assert body["contents"] == [{"role": "user", "parts": [{"text": HELLO[0]["content"]}]}]
    assert [p["text"] for p in body["systemInstruction"]["parts"]] == ["Be terse."]
    assert body["generationConfig"] == {
        "temperature": 0.25, "topP": 0.5, "maxOutputTokens": 50, "stopSequences": ["\n\n"]}
    assert "model" not in body and "stream" not in body and "messages" not in body
    assert set(body) <= {"contents", "systemInstruction", "generationConfig"}


def test_system_and_developer_messages_become_the_system_instruction(
    gemini_client: openai.OpenAI, upstream: MockUpstream
):
    completion = gemini_client.chat.completions.create(model="gemini-2.5-flash", messages=[
        {"role": "system", "content": "Be terse."},
        {"role": "developer", "content": [{"type": "text", "text": "Answer in English."}]},
        *HELLO,
    ])
    assert completion.choices[0].message.content == EXPECTED_TEXT
    body = sent_body(upstream)
    texts = [p["text"] for p in body["systemInstruction"]["parts"]]
    assert texts in (["Be terse.", "Answer in English."],
                     ["Be terse.\n\nAnswer in English."])
    assert [c["role"] for c in body["contents"]] == ["user"]


@pytest.mark.parametrize(
    ("extra", "sent"),
    [
        ({"max_tokens": 50}, 50),
        ({"max_completion_tokens": 60}, 60),
        ({"max_tokens": 50, "max_completion_tokens": 60}, 60),
    ],
)
def test_max_tokens_goes_up_as_max_output_tokens(gemini_client: openai.OpenAI,
                                                 upstream: MockUpstream,
                                                 extra: dict[str, int], sent: int):
    gemini_client.chat.completions.create(model="gemini-2.5-flash", messages=HELLO, **extra)
    assert sent_body(upstream)["generationConfig"]["maxOutputTokens"] == sent


def test_no_max_tokens_sends_no_limit(gemini_client: openai.OpenAI, upstream: MockUpstream):
    gemini_client.chat.completions.create(model="gemini-2.5-flash", messages=HELLO)
    assert "maxOutputTokens" not in (sent_body(upstream).get("generationConfig") or {})


@pytest.mark.parametrize(
    ("extra", "content", "finish_reason"),
    [
        ({"max_tokens": 3}, "Hello from the", "length"),  # Gemini: MAX_TOKENS
        ({"stop": " mock"}, "Hello from the", "stop"),  # Gemini: STOP at a stop sequence
    ],
)
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_finish_reasons_are_mapped(gemini_client: openai.OpenAI, extra: dict[str, Any],
                                   content: str, finish_reason: str, stream: bool):
    if stream:
        chunks = [c for c in gemini_client.chat.completions.create(
            model="gemini-2.5-flash", messages=HELLO, stream=True, **extra) if c.choices]
        text = "".join(c.choices[0].delta.content or "" for c in chunks)
        finish = chunks[-1].choices[0].finish_reason
    else:
        completion = gemini_client.chat.completions.create(model="gemini-2.5-flash",
                                                           messages=HELLO, **extra)
        text = completion.choices[0].message.content
        finish = completion.choices[0].finish_reason
    assert text == content
    assert finish == finish_reason


def test_usage_counts_thoughts_as_completion_tokens(gemini_client: openai.OpenAI,
                                                    upstream: MockUpstream):
    """Gemini reports thinking apart (`thoughtsTokenCount`); OpenAI counts
    reasoning inside `completion_tokens`, so the three numbers add up."""
    completion = gemini_client.chat.completions.create(model="gemini-2.5-flash",
                                                       messages=HELLO)
    usage = completion.usage
    assert usage is not None
    assert usage.prompt_tokens == gemini_prompt_tokens(sent_body(upstream))
    assert usage.completion_tokens == answer_words(EXPECTED_TEXT) + GEMINI_THOUGHTS_TOKENS
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    details = usage.completion_tokens_details
    if details is not None and details.reasoning_tokens is not None:
        assert details.reasoning_tokens == GEMINI_THOUGHTS_TOKENS


def test_n_goes_up_as_candidate_count(gemini_client: openai.OpenAI, upstream: MockUpstream):
    completion = gemini_client.chat.completions.create(model="gemini-2.5-flash",
                                                       messages=HELLO, n=2)
    assert sent_body(upstream)["generationConfig"]["candidateCount"] == 2
    assert [c.index for c in completion.choices] == [0, 1]
    assert all(c.message.content == EXPECTED_TEXT for c in completion.choices)


def test_image_data_url_goes_up_as_inline_data(gemini_client: openai.OpenAI,
                                               upstream: MockUpstream):
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n not really a picture").decode()
    completion = gemini_client.chat.completions.create(model="gemini-2.5-flash", messages=[{
        "role": "user",
        "content": [
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}",
                                                "detail": "low"}},
        ],
    }])

    assert completion.choices[0].message.content == (
        "Hello from the mock upstream! You said: What is in this picture?")
    assert sent_body(upstream)["contents"] == [{"role": "user", "parts": [
        {"text": "What is in this picture?"},
        {"inlineData": {"mimeType": "image/png", "data": png}},
    ]}]


# -- streams --------------------------------------------------------------------


def test_stream_with_include_usage_adds_up_and_ends_with_usage(gemini_client: openai.OpenAI,
                                                               upstream: MockUpstream):
    stream = gemini_client.chat.completions.create(
        model="gemini-2.5-flash", messages=HELLO, stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    received = last_gemini(upstream)
    assert received.path == f"/v1beta/models/{GEMINI_MODEL}:streamGenerateContent?alt=sse"
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
    assert final.usage.prompt_tokens == gemini_prompt_tokens(received.body)
    assert final.usage.completion_tokens == answer_words(EXPECTED_TEXT) + GEMINI_THOUGHTS_TOKENS
    assert final.usage.total_tokens == final.usage.prompt_tokens + final.usage.completion_tokens
    assert all(c.usage is None for c in chunks[:-1])


def test_stream_without_include_usage_has_no_usage(gemini_client: openai.OpenAI):
    chunks = list(gemini_client.chat.completions.create(model="gemini-2.5-flash",
                                                        messages=HELLO, stream=True))

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == EXPECTED_TEXT
    assert all(c.choices for c in chunks)  # no usage-only chunk
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_sdk_stream_helper_accumulates_the_text(gemini_client: openai.OpenAI):
    with gemini_client.chat.completions.stream(model="gemini-2.5-flash",
                                               messages=HELLO) as stream:
        deltas = [e.delta for e in stream if e.type == "content.delta"]
        final = stream.get_final_completion()
    assert "".join(deltas) == EXPECTED_TEXT
    assert final.choices[0].message.content == EXPECTED_TEXT
    assert final.choices[0].finish_reason == "stop"


def test_error_event_after_the_first_token_raises_api_error(gemini_client: openai.OpenAI):
    """Gemini's in-stream `{"error": ...}` after the first text (past the
    commit point) reaches the SDK as an in-band error, never a short answer."""
    stream = gemini_client.chat.completions.create(model="gemini-error-mid-stream",
                                                   messages=HELLO, stream=True)
    text, e = read_sse_error(stream)
    assert not isinstance(e, openai.APIStatusError)  # in-band, after the 200
    assert GEMINI_OVERLOADED_MESSAGE in e.message
    assert text == EXPECTED_TEXT.split(" ")[0]  # the one piece before the error


def test_stream_cut_by_gemini_raises_api_error(gemini_client: openai.OpenAI):
    stream = gemini_client.chat.completions.create(model="gemini-cut-stream",
                                                   messages=HELLO, stream=True)
    text, e = read_sse_error(stream)
    assert not isinstance(e, openai.APIStatusError)
    assert e.code == "upstream_stream_interrupted"  # as for a cut OpenAI upstream
    assert text == " ".join(EXPECTED_TEXT.split(" ")[:2])


def test_client_closing_the_stream_drops_the_gemini_request(gemini_client: openai.OpenAI,
                                                            upstream: MockUpstream):
    stream = gemini_client.chat.completions.create(model="gemini-hang", messages=HELLO,
                                                   stream=True)
    first = next(iter(stream))
    assert first.choices and first.object == "chat.completion.chunk"
    assert upstream.dropped(GEMINI_HANG) == 0
    started = time.monotonic()
    stream.close()

    assert upstream.wait_for_dropped(GEMINI_HANG, DROP_DEADLINE_S), (
        "the router must hang up on Gemini when its client leaves")
    assert time.monotonic() - started < DROP_DEADLINE_S


def test_gemini_slower_than_first_byte_timeout_raises_504(gemini_client: openai.OpenAI,
                                                          upstream: MockUpstream):
    with pytest.raises(openai.InternalServerError) as info:
        gemini_client.chat.completions.create(model="gemini-slow", messages=HELLO)
    e = info.value
    assert e.status_code == 504
    assert e.code == "upstream_timeout"
    assert upstream.count(GEMINI_SLOW) >= 1


# -- tools ----------------------------------------------------------------------


def test_tool_call_comes_back_with_parsed_arguments(gemini_client: openai.OpenAI,
                                                    upstream: MockUpstream):
    completion = gemini_client.chat.completions.create(
        model="gemini-2.5-flash", messages=WEATHER_QUESTION, tools=[WEATHER_TOOL],
    )

    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"  # Gemini says STOP; the call decides
    assert not choice.message.content
    assert len(choice.message.tool_calls) == 1
    call = choice.message.tool_calls[0]
    assert call.type == "function"
    assert call.id
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Oslo"}
    body = sent_body(upstream)
    declarations = [d for tool in body["tools"] for d in tool.get("functionDeclarations", [])]
    assert len(declarations) == 1
    declaration = declarations[0]
    assert declaration["name"] == "get_weather"
    assert declaration["description"] == "Current weather in a city."
    schema = declaration.get("parametersJsonSchema") or declaration.get("parameters")
    assert schema["properties"].keys() == {"city"}
    mode = (body.get("toolConfig") or {}).get("functionCallingConfig", {}).get("mode", "AUTO")
    assert mode == "AUTO"


@pytest.mark.parametrize(
    ("tool_choice", "config", "called"),
    [
        ("required", {"mode": "ANY"}, "get_weather"),
        ({"type": "function", "function": {"name": "get_time"}},
         {"mode": "ANY", "allowedFunctionNames": ["get_time"]}, "get_time"),
        ("none", {"mode": "NONE"}, None),
    ],
    ids=["required", "named", "none"],
)
def test_tool_choice_is_mapped(gemini_client: openai.OpenAI, upstream: MockUpstream,
                               tool_choice: Any, config: dict[str, Any], called: str | None):
    completion = gemini_client.chat.completions.create(
        model="gemini-2.5-flash", messages=WEATHER_QUESTION, tools=[WEATHER_TOOL, TIME_TOOL],
        tool_choice=tool_choice,
    )

    body = sent_body(upstream)
    if called is None and "tools" not in body:
        pass  # dropping the tools is as good as NONE
    else:
        assert body["toolConfig"]["functionCallingConfig"] == config
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


def test_streamed_tool_call_deltas(gemini_client: openai.OpenAI):
    stream = gemini_client.chat.completions.create(
        model="gemini-2.5-flash", messages=WEATHER_QUESTION, tools=[WEATHER_TOOL],
        stream=True,
    )
    calls: dict[int, dict[str, Any]] = {}
    finishes = []
    for chunk in stream:
        if not chunk.choices:
            continue
        for tc in chunk.choices[0].delta.tool_calls or []:
            call = calls.setdefault(tc.index, {"id": None, "name": None, "arguments": ""})
            call["id"] = tc.id or call["id"]
            if tc.function and tc.function.name:
                call["name"] = tc.function.name
            if tc.function and tc.function.arguments:
                call["arguments"] += tc.function.arguments
        if chunk.choices[0].finish_reason:
            finishes.append(chunk.choices[0].finish_reason)

    assert finishes == ["tool_calls"]
    assert list(calls) == [0]
    assert calls[0]["id"]
    assert calls[0]["name"] == "get_weather"
    assert json.loads(calls[0]["arguments"]) == {"city": "Oslo"}


@pytest.mark.parametrize("tool_choice", ["auto", "required"])
def test_sdk_stream_helper_accumulates_the_tool_call(gemini_client: openai.OpenAI,
                                                     tool_choice: str):
    with gemini_client.chat.completions.stream(
        model="gemini-2.5-flash", messages=WEATHER_QUESTION, tools=[WEATHER_TOOL],
        tool_choice=tool_choice,
    ) as stream:
        final = stream.get_final_completion()

    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert len(choice.message.tool_calls) == 1
    call = choice.message.tool_calls[0]
    assert call.id
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Oslo"}


def _assistant_turn(message: Any) -> dict[str, Any]:
    """The assistant message as an application sends it back: only the
    fields OpenAI's API documents, the tool calls as received."""
    turn: dict[str, Any] = {"role": "assistant", "tool_calls": [
        {"id": c.id, "type": "function",
         "function": {"name": c.function.name, "arguments": c.function.arguments}}
        for c in message.tool_calls]}
    if message.content:
        turn["content"] = message.content
    return turn


@pytest.mark.parametrize("model", ["gemini-2.5-flash", "gemini-3"])
@pytest.mark.parametrize("first_streamed", [False, True], ids=["whole", "streamed"])
def test_tool_round_trip_sends_the_function_response_and_the_thought_signature(
    gemini_client: openai.OpenAI, upstream: MockUpstream, model: str, first_streamed: bool
):
    """The thought signature of the `functionCall` part travels in the tool
    call's id and must come back on the same part; Gemini 3 refuses the
    second request without it (the mock too)."""
    messages: list[Any] = list(WEATHER_QUESTION)
    if first_streamed:
        with gemini_client.chat.completions.stream(model=model, messages=messages,
                                                   tools=[WEATHER_TOOL]) as stream:
            first = stream.get_final_completion()
    else:
        first = gemini_client.chat.completions.create(model=model, messages=messages,
                                                      tools=[WEATHER_TOOL])
    signature = upstream.last_thought_signature()
    call = first.choices[0].message.tool_calls[0]
    assert signature not in call.function.arguments

    messages.append(_assistant_turn(first.choices[0].message))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": "12 degrees and clear"})
    second = gemini_client.chat.completions.create(model=model, messages=messages,
                                                   tools=[WEATHER_TOOL])

    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content == "The tool said: 12 degrees and clear"
    assert not second.choices[0].message.tool_calls
    contents = sent_body(upstream)["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    assert contents[0]["parts"] == [{"text": WEATHER_QUESTION[0]["content"]}]
    assert contents[1]["parts"] == [{
        "functionCall": {"name": "get_weather", "args": {"city": "Oslo"}},
        "thoughtSignature": signature,
    }]
    assert len(contents[2]["parts"]) == 1
    result = contents[2]["parts"][0]["functionResponse"]
    assert result["name"] == "get_weather"
    assert "12 degrees and clear" in json.dumps(result["response"])


@pytest.mark.parametrize("first_streamed", [False, True], ids=["whole", "streamed"])
def test_parallel_calls_come_back_signed_on_the_first_part_and_results_share_a_turn(
    gemini_client: openai.OpenAI, upstream: MockUpstream, first_streamed: bool
):
    """Gemini 3 signs only the first of parallel `functionCall` parts: the
    signature must come back there and nowhere else, and both results go
    up in one user turn, in the calls' order."""
    messages: list[Any] = [{"role": "user", "content": f"Oslo, with {PARALLEL_TRIGGER}."}]
    tools = [WEATHER_TOOL, TIME_TOOL]
    if first_streamed:
        with gemini_client.chat.completions.stream(model="gemini-3", messages=messages,
                                                   tools=tools) as stream:
            first = stream.get_final_completion()
    else:
        first = gemini_client.chat.completions.create(model="gemini-3", messages=messages,
                                                      tools=tools)
    signature = upstream.last_thought_signature()
    calls = first.choices[0].message.tool_calls
    assert [c.function.name for c in calls] == ["get_weather", "get_time"]
    assert len({c.id for c in calls}) == 2
    assert first.choices[0].finish_reason == "tool_calls"

    messages.append(_assistant_turn(first.choices[0].message))
    messages.append({"role": "tool", "tool_call_id": calls[0].id, "content": "12 degrees"})
    messages.append({"role": "tool", "tool_call_id": calls[1].id, "content": "09:00"})
    second = gemini_client.chat.completions.create(model="gemini-3", messages=messages,
                                                   tools=tools)

    assert second.choices[0].message.content == "The tool said: 09:00"  # the last result
    contents = sent_body(upstream)["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    assert contents[1]["parts"] == [
        {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}},
         "thoughtSignature": signature},
        {"functionCall": {"name": "get_time", "args": {"zone": "Oslo", "hours24": True}}},
    ]
    results = [p["functionResponse"] for p in contents[2]["parts"]]
    assert [r["name"] for r in results] == ["get_weather", "get_time"]
    assert "12 degrees" in json.dumps(results[0]["response"])
    assert "09:00" in json.dumps(results[1]["response"])


def test_a_tool_history_made_elsewhere_can_continue_on_gemini_3(
    gemini_client: openai.OpenAI, bedrock_client: openai.OpenAI, upstream: MockUpstream
):
    """A conversation moves to Gemini 3 (an app switches models, or a
    fallback serves the next turn) after a tool call another provider made:
    there is no thought signature to restore, and Gemini 3 refuses the
    current turn's call without one. Google documents a bypass value for
    exactly this case (`context_engineering_is_the_way_to_go`)."""
    messages: list[Any] = list(WEATHER_QUESTION)
    first = bedrock_client.chat.completions.create(model="claude-bedrock", messages=messages,
                                                   tools=[WEATHER_TOOL], tool_choice="required")
    call = first.choices[0].message.tool_calls[0]
    messages.append(_assistant_turn(first.choices[0].message))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": "12 degrees and clear"})

    second = gemini_client.chat.completions.create(model="gemini-3", messages=messages,
                                                   tools=[WEATHER_TOOL])

    assert second.choices[0].message.content == "The tool said: 12 degrees and clear"
    part = sent_body(upstream)["contents"][1]["parts"][0]
    assert part["functionCall"]["name"] == "get_weather"


def test_tool_result_without_its_call_reaches_the_sdk_as_bad_request(
    gemini_client: openai.OpenAI, upstream: MockUpstream
):
    """A tool result for a call the conversation never made: Gemini (and
    the mock) refuse a function response that does not follow a call, or
    the router refuses it first; either way the SDK raises BadRequestError."""
    with pytest.raises(openai.BadRequestError) as info:
        gemini_client.chat.completions.create(model="gemini-2.5-flash", messages=[
            *HELLO, {"role": "tool", "tool_call_id": "call_nowhere", "content": "12"},
        ])
    e = info.value
    assert e.type == "invalid_request_error"
    assert set(json.loads(e.response.content)["error"]) >= {"message", "type", "code"}
    assert upstream.count(GEMINI_MODEL) <= 1  # a 400 is not retried


def test_a_json_tool_result_goes_up_as_the_response_object(gemini_client: openai.OpenAI,
                                                          upstream: MockUpstream):
    messages: list[Any] = list(WEATHER_QUESTION)
    first = gemini_client.chat.completions.create(model="gemini-2.5-flash", messages=messages,
                                                  tools=[WEATHER_TOOL])
    call = first.choices[0].message.tool_calls[0]
    messages += [_assistant_turn(first.choices[0].message),
                 {"role": "tool", "tool_call_id": call.id,
                  "content": '{"celsius": 12, "sky": "clear"}'}]
    gemini_client.chat.completions.create(model="gemini-2.5-flash", messages=messages,
                                          tools=[WEATHER_TOOL])
    result = sent_body(upstream)["contents"][2]["parts"][0]["functionResponse"]
    assert result == {"name": "get_weather", "response": {"celsius": 12, "sky": "clear"}}


class GetWeather(pydantic.BaseModel):
    """Current weather in a city."""

    city: str


def test_a_strict_pydantic_tool_is_called_and_parsed(gemini_client: openai.OpenAI,
                                                     upstream: MockUpstream):
    """`pydantic_function_tool` sends a strict schema with
    `additionalProperties: false`, which Gemini's `parameters` (OpenAPI)
    refuses; it must go up where JSON Schema is taken."""
    completion = gemini_client.chat.completions.parse(
        model="gemini-2.5-flash", messages=WEATHER_QUESTION,
        tools=[openai.pydantic_function_tool(GetWeather)],
    )
    call = completion.choices[0].message.tool_calls[0]
    assert call.function.name == "GetWeather"
    assert call.function.parsed_arguments == GetWeather(city="Oslo")
    declaration = sent_body(upstream)["tools"][0]["functionDeclarations"][0]
    assert declaration["name"] == "GetWeather"


def test_streamed_candidates_stay_apart(gemini_client: openai.OpenAI):
    texts: dict[int, str] = {}
    finishes: dict[int, list[str]] = {}
    for chunk in gemini_client.chat.completions.create(model="gemini-2.5-flash",
                                                       messages=HELLO, n=2, stream=True):
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + (choice.delta.content or "")
            if choice.finish_reason:
                finishes.setdefault(choice.index, []).append(choice.finish_reason)
    assert texts == {0: EXPECTED_TEXT, 1: EXPECTED_TEXT}
    assert finishes == {0: ["stop"], 1: ["stop"]}


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_a_blocked_prompt_comes_back_as_content_filter(gemini_client: openai.OpenAI,
                                                       stream: bool):
    """Gemini blocks a prompt with a 200 that has no candidates, only
    `promptFeedback.blockReason`: one choice, `content_filter`, no text."""
    if stream:
        chunks = [c for c in gemini_client.chat.completions.create(
            model="gemini-blocked", messages=HELLO, stream=True) if c.choices]
        finishes = [c.choices[0].finish_reason for c in chunks if c.choices[0].finish_reason]
        assert finishes == ["content_filter"]
        assert "".join(c.choices[0].delta.content or "" for c in chunks) == ""
        refusal = "".join(c.choices[0].delta.refusal or "" for c in chunks)
    else:
        completion = gemini_client.chat.completions.create(model="gemini-blocked",
                                                           messages=HELLO)
        assert len(completion.choices) == 1
        choice = completion.choices[0]
        assert choice.finish_reason == "content_filter"
        assert not choice.message.content
        refusal = choice.message.refusal or ""
    assert "SAFETY" in refusal


# -- structured output ----------------------------------------------------------


class Weather(pydantic.BaseModel):
    city: str
    celsius: float
    sunny: bool


def _response_schema(config: dict[str, Any]) -> Any:
    return config.get("responseJsonSchema") or config.get("responseSchema")


def test_sdk_parse_helper_fills_a_pydantic_model(gemini_client: openai.OpenAI,
                                                 upstream: MockUpstream):
    completion = gemini_client.chat.completions.parse(
        model="gemini-2.5-flash", messages=[{"role": "user", "content": "Weather as JSON."}],
        response_format=Weather,
    )
    choice = completion.choices[0]
    assert choice.message.parsed == Weather(city="Oslo", celsius=21.5, sunny=True)
    assert choice.finish_reason == "stop"
    config = sent_body(upstream)["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    schema = _response_schema(config)
    assert schema["properties"].keys() == {"city", "celsius", "sunny"}
    assert "response_format" not in sent_body(upstream)


def test_json_object_asks_for_json(gemini_client: openai.OpenAI, upstream: MockUpstream):
    completion = gemini_client.chat.completions.create(
        model="gemini-2.5-flash", messages=[{"role": "user", "content": "JSON please"}],
        response_format={"type": "json_object"},
    )
    assert json.loads(completion.choices[0].message.content) == {
        "answer": "You said: JSON please", "ok": True}
    config = sent_body(upstream)["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert _response_schema(config) in (None, {"type": "object"}, {"type": "OBJECT"})


# -- failures -------------------------------------------------------------------


def test_overloaded_gemini_primary_fails_over_to_an_openai_target(
    gemini_client: openai.OpenAI, upstream: MockUpstream
):
    raw = gemini_client.chat.completions.with_raw_response.create(
        model="gemini-overloaded", messages=HELLO)

    assert raw.headers["x-switchyard-target"] == "backup/upstream-gpt"
    completion = raw.parse()
    assert completion.choices[0].message.content == EXPECTED_TEXT
    assert completion.id.startswith("chatcmpl-mock")
    # The 503 is retried once on the same target, then the next target serves.
    assert upstream.count(GEMINI_OVERLOADED) == 2
    assert raw.headers["x-switchyard-attempts"] == "3"
    fallback = upstream.last("/chat/completions")
    assert fallback.body["model"] == "upstream-gpt"
    assert fallback.body["messages"] == HELLO  # the OpenAI request, untranslated
    assert fallback.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert "x-goog-api-key" not in fallback.headers


@pytest.mark.parametrize(
    ("model", "upstream_model", "exception", "status", "code", "says"),
    [
        ("gemini-quota", GEMINI_QUOTA, openai.RateLimitError, 429, "RESOURCE_EXHAUSTED",
         "exceeded your current quota"),
        ("gemini-overloaded-alone", GEMINI_OVERLOADED, openai.InternalServerError, 503,
         "UNAVAILABLE", "overloaded"),
    ],
    ids=["429", "503"],
)
def test_gemini_errors_reach_the_sdk_as_its_exception_classes(
    gemini_client: openai.OpenAI, upstream: MockUpstream, model: str, upstream_model: str,
    exception: type[openai.APIStatusError], status: int, code: str, says: str,
):
    with pytest.raises(exception) as info:
        gemini_client.chat.completions.create(model=model, messages=HELLO)
    e = info.value
    assert e.status_code == status
    assert e.code == code
    assert says in e.message
    assert set(json.loads(e.response.content)["error"]) >= {"message", "type", "code"}
    assert upstream.count(upstream_model) == 2  # the router retried once
    assert e.response.headers["x-should-retry"] == "false"  # ... so the SDK need not


def test_gemini_400_reaches_the_sdk_as_bad_request(gemini_client: openai.OpenAI,
                                                   upstream: MockUpstream):
    """The `gem-badkey` upstream's key is refused (400 API_KEY_INVALID):
    the SDK gets OpenAI's error shape, and the refused key is not in it."""
    with pytest.raises(openai.BadRequestError) as info:
        gemini_client.chat.completions.create(model="gemini-bad-key", messages=HELLO)
    e = info.value
    assert e.status_code == 400
    assert e.type == "invalid_request_error"
    assert e.code == "INVALID_ARGUMENT"
    assert "API key not valid" in e.message
    assert GEMINI_WRONG_KEY not in e.response.text
    assert last_gemini(upstream).headers["x-goog-api-key"] == GEMINI_WRONG_KEY
    assert upstream.count(GEMINI_MODEL) == 1  # a 400 is not retried


def test_embeddings_on_a_gemini_model_raise_bad_request(gemini_client: openai.OpenAI,
                                                        upstream: MockUpstream):
    with pytest.raises(openai.BadRequestError) as info:
        gemini_client.embeddings.create(model="gemini-2.5-flash", input="hello")
    e = info.value
    assert e.code == "unsupported_endpoint"
    assert e.type == "invalid_request_error"
    assert "/v1/embeddings" in e.message
    assert upstream.requests == []


def test_no_secret_reaches_the_client(gemini_client: openai.OpenAI, upstream: MockUpstream):
    """Answers whole, streamed, with a tool call and as errors: no key the
    router holds (nor the client's own) is in any header or body."""
    seen: list[tuple[str, str]] = []

    def keep(what: str, response: Any, body: str) -> None:
        seen.append((what, json.dumps(dict(response.headers)) + "\n" + body))

    raw = gemini_client.chat.completions.with_raw_response.create(
        model="gemini-2.5-flash", messages=HELLO)
    keep("whole", raw, raw.http_response.text)
    raw = gemini_client.chat.completions.with_raw_response.create(
        model="gemini-3", messages=WEATHER_QUESTION, tools=[WEATHER_TOOL])
    keep("tool call", raw, raw.http_response.text)
    with gemini_client.chat.completions.with_streaming_response.create(
            model="gemini-2.5-flash", messages=HELLO, stream=True,
            stream_options={"include_usage": True}) as streamed:
        keep("stream", streamed, "".join(streamed.iter_text()))
    for model in ("gemini-quota", "gemini-bad-key"):
        with pytest.raises(openai.APIStatusError) as info:
            gemini_client.chat.completions.create(model=model, messages=HELLO)
        keep(model, info.value.response, info.value.response.text)

    for what, text in seen:
        for name, secret in SECRETS.items():
            assert secret not in text, f"the {name} is in the {what} answer"
        assert GEMINI_WRONG_KEY not in text, f"the wrong key is in the {what} answer"


# -- the mock's Gemini API itself ---------------------------------------------------


def _post_gemini(upstream: MockUpstream, body: Any, *, model: str = GEMINI_MODEL,
                 headers: dict[str, str] | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{upstream.port}/v1beta/models/{model}:generateContent",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json",
                 **({"x-goog-api-key": GEMINI_KEY} if headers is None else headers)},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=CLIENT_TIMEOUT_S) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


GOOD_BODY = {"contents": [{"role": "user", "parts": [{"text": "ping from the compat suite"}]}]}
CALL_TURN = {"role": "model", "parts": [{"functionCall": {"name": "get_weather",
                                                          "args": {"city": "Oslo"}}}]}
RESULT_TURN = {"role": "user", "parts": [{"functionResponse": {
    "name": "get_weather", "response": {"result": "12"}}}]}
DECLARATION = {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}}}


@pytest.mark.parametrize(
    ("body", "model", "headers", "status", "code", "says"),
    [
        (GOOD_BODY, GEMINI_MODEL, {}, 403, "PERMISSION_DENIED", "unregistered callers"),
        (GOOD_BODY, GEMINI_MODEL, {"x-goog-api-key": "AIza-nope"}, 400, "INVALID_ARGUMENT",
         "API key not valid"),
        (GOOD_BODY, "gemini-nope", None, 404, "NOT_FOUND", "models/gemini-nope is not found"),
        ({**GOOD_BODY, "model": GEMINI_MODEL}, GEMINI_MODEL, None, 400, "INVALID_ARGUMENT",
         'Unknown name "model"'),
        ({**GOOD_BODY, "generationConfig": {"max_tokens": 5}}, GEMINI_MODEL, None, 400,
         "INVALID_ARGUMENT", 'Unknown name "max_tokens" at \'generation_config\''),
        ({"contents": [{"role": "system", "parts": [{"text": "x"}]}, *GOOD_BODY["contents"]]},
         GEMINI_MODEL, None, 400, "INVALID_ARGUMENT", "Please use a valid role: user, model."),
        ({"contents": [{"role": "user", "parts": [{"text": ""}]}]}, GEMINI_MODEL, None, 400,
         "INVALID_ARGUMENT", "required oneof field 'data'"),
        ({"contents": []}, GEMINI_MODEL, None, 400, "INVALID_ARGUMENT",
         "contents is not specified"),
        ({**GOOD_BODY, "tools": [{"functionDeclarations": [{
            "name": "get_weather", "parameters": {
                "type": "object", "additionalProperties": False}}]}]},
         GEMINI_MODEL, None, 400, "INVALID_ARGUMENT",
         'Unknown name "additionalProperties" at \'tools[0].function_declarations[0]'
         '.parameters\''),
        ({"contents": [*GOOD_BODY["contents"], RESULT_TURN]}, GEMINI_MODEL, None, 400,
         "INVALID_ARGUMENT", "function response turn comes immediately after a function call"),
        ({"contents": [*GOOD_BODY["contents"], CALL_TURN, RESULT_TURN],
          "tools": [{"functionDeclarations": [DECLARATION]}]},
         GEMINI_3_MODEL, None, 400, "INVALID_ARGUMENT", "missing a thought_signature"),
        ({"contents": [*GOOD_BODY["contents"], {"role": "model", "parts": [
            {**CALL_TURN["parts"][0], "thoughtSignature": "bm90IG1pbmU="}]}, RESULT_TURN],
          "tools": [{"functionDeclarations": [DECLARATION]}]},
         GEMINI_MODEL, None, 400, "INVALID_ARGUMENT", "Corrupted thought signature"),
        (GOOD_BODY, GEMINI_QUOTA, None, 429, "RESOURCE_EXHAUSTED", "quota"),
        (GOOD_BODY, GEMINI_OVERLOADED, None, 503, "UNAVAILABLE", "overloaded"),
    ],
    ids=["no-key", "bad-key", "unknown-model", "openai-field", "openai-config-field",
         "system-role", "empty-text", "no-contents", "additional-properties",
         "response-without-call", "gemini-3-no-signature", "foreign-signature", "quota",
         "overloaded"],
)
def test_mock_refuses_what_gemini_refuses(upstream: MockUpstream, body: Any, model: str,
                                          headers: dict[str, str] | None, status: int,
                                          code: str, says: str):
    """The checks above rely on the mock being as strict as the real API."""
    got, answer = _post_gemini(upstream, body, model=model, headers=headers)
    assert got == status
    assert answer["error"]["code"] == status
    assert answer["error"]["status"] == code
    assert says in answer["error"]["message"]


def test_mock_takes_the_documented_bypass_signature_on_gemini_3(upstream: MockUpstream):
    """Google's value for function calls Gemini did not make passes the check."""
    got, answer = _post_gemini(upstream, {"contents": [
        *GOOD_BODY["contents"],
        {"role": "model", "parts": [{**CALL_TURN["parts"][0],
                                     "thoughtSignature": "context_engineering_is_the_way_to_go"}]},
        RESULT_TURN], "tools": [{"functionDeclarations": [DECLARATION]}]}, model=GEMINI_3_MODEL)
    assert got == 200, answer
    assert answer["candidates"][0]["content"]["parts"] == [{"text": "The tool said: 12"}]


def test_mock_answers_a_gemini_3_round_trip_with_its_signature(upstream: MockUpstream):
    tools = [{"functionDeclarations": [DECLARATION]}]
    got, answer = _post_gemini(upstream, {**GOOD_BODY, "tools": tools}, model=GEMINI_3_MODEL)
    assert got == 200
    part = answer["candidates"][0]["content"]["parts"][0]
    assert part["functionCall"] == {"name": "get_weather", "args": {"city": "Oslo"}}
    assert part["thoughtSignature"] == upstream.last_thought_signature()

    got, answer = _post_gemini(upstream, {"contents": [
        *GOOD_BODY["contents"], {"role": "model", "parts": [part]}, RESULT_TURN],
        "tools": tools}, model=GEMINI_3_MODEL)
    assert got == 200, answer
    assert answer["candidates"][0]["content"]["parts"] == [{"text": "The tool said: 12"}]
    usage = answer["usageMetadata"]
    assert usage["totalTokenCount"] == (usage["promptTokenCount"]
                                        + usage["candidatesTokenCount"]
                                        + usage["thoughtsTokenCount"])
