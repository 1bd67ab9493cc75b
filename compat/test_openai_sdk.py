"""The official OpenAI Python SDK against Switchyard.

Each test drives the real router binary (started by `conftest.py`) with
`openai.OpenAI` / `openai.AsyncOpenAI`, exactly as an application would,
and checks what the SDK makes of the answer: parsed objects, streams,
tool calls, exception classes and the SDK's own retries. Where the router
forwards to the mock upstream, the test also checks what arrived there.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from typing import Any

import openai
import pydantic
import pytest

from conftest import (
    CLIENT_KEY,
    CLIENT_TIMEOUT_S,
    MAX_BODY_BYTES,
    MODELS,
    ROUTER_KEY,
    UNSET_VAR,
    UPSTREAM_KEY,
    Router,
    Sent,
    make_client,
)
from mock_upstream import (
    EMBEDDING,
    FAILURES,
    TOOL_ARGUMENTS,
    UPSTREAM_REQUEST_ID_PREFIX,
    MockUpstream,
)

HELLO = [{"role": "user", "content": "ping from the compat suite"}]
EXPECTED_TEXT = "Hello from the mock upstream! You said: ping from the compat suite"

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


def error_json(e: openai.APIStatusError) -> Any:
    return json.loads(e.response.content)


# -- chat ---------------------------------------------------------------------


def test_chat_completion_parses_into_sdk_objects(client: openai.OpenAI, upstream: MockUpstream):
    completion = client.chat.completions.create(model="mock-gpt", messages=HELLO)

    assert completion.object == "chat.completion"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content == EXPECTED_TEXT
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens
    )
    assert upstream.count("upstream-gpt") == 1


def test_model_is_renamed_and_credentials_replaced_on_the_way_up(
    client: openai.OpenAI, upstream: MockUpstream
):
    client.chat.completions.create(model="mock-gpt", messages=HELLO, temperature=0.25)

    received = upstream.last("/chat/completions")
    assert received.path == "/v1/chat/completions"
    assert received.body["model"] == "upstream-gpt"
    assert received.body["messages"] == HELLO
    assert received.body["temperature"] == 0.25
    assert received.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert CLIENT_KEY not in json.dumps(received.headers)


def test_request_body_goes_up_byte_for_byte_except_the_model(
    router: Router, upstream: MockUpstream
):
    sent = Sent()
    with make_client(router.base_url, sent=sent) as c:
        c.chat.completions.create(
            model="mock-gpt", messages=HELLO, temperature=0.5, seed=7,
            extra_body={"x_unknown_field": {"kept": [1, 2.5, "three"]}},
        )
    sdk_bytes = sent.requests[-1].content
    assert b'"mock-gpt"' in sdk_bytes
    expected = sdk_bytes.replace(b'"mock-gpt"', b'"upstream-gpt"')
    assert upstream.last("/chat/completions").raw_body == expected


def test_model_names_with_colon_and_slash_route(client: openai.OpenAI, upstream: MockUpstream):
    for name in ("qwen2.5:0.5b", "meta-llama/Llama-3-8B"):
        completion = client.chat.completions.create(model=name, messages=HELLO)
        assert completion.choices[0].message.content == EXPECTED_TEXT
        assert upstream.last("/chat/completions").body["model"] == name


def test_streamed_chat_yields_deltas_that_add_up(client: openai.OpenAI, upstream: MockUpstream):
    stream = client.chat.completions.create(model="mock-gpt", messages=HELLO, stream=True)
    chunks = list(stream)

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == EXPECTED_TEXT
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 1
    assert {c.id for c in chunks} == {chunks[0].id}
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks)
    assert upstream.last("/chat/completions").body["stream"] is True


def test_stream_with_include_usage_ends_with_a_usage_chunk(client: openai.OpenAI):
    stream = client.chat.completions.create(
        model="mock-gpt", messages=HELLO, stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    final = chunks[-1]
    assert final.choices == []
    assert final.usage is not None
    assert final.usage.completion_tokens == len(EXPECTED_TEXT.split())
    assert final.usage.total_tokens == final.usage.prompt_tokens + final.usage.completion_tokens
    assert all(c.usage is None for c in chunks[:-1])
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == EXPECTED_TEXT


def test_sdk_stream_helper_accumulates_the_answer(client: openai.OpenAI):
    with client.chat.completions.stream(model="mock-gpt", messages=HELLO) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.content == EXPECTED_TEXT


@pytest.mark.parametrize("model", ["cut-stream", "cut-mid-event"])
def test_stream_cut_by_the_upstream_raises_api_error(client: openai.OpenAI, model: str):
    """A stream that breaks after the 200 must not look like a short answer:
    the SDK raises `APIError` from the error event the router appends."""
    stream = client.chat.completions.create(model=model, messages=HELLO, stream=True)
    text = []
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            if chunk.choices:
                text.append(chunk.choices[0].delta.content or "")
    e = info.value
    assert not isinstance(e, openai.APIStatusError)  # in-band, after the 200
    assert e.code == "upstream_stream_interrupted"
    assert "".join(text) == " ".join(EXPECTED_TEXT.split(" ")[:2])


# -- tools --------------------------------------------------------------------


def test_tool_call_round_trip(client: openai.OpenAI, upstream: MockUpstream):
    messages: list[Any] = [{"role": "user", "content": "What is the weather in Oslo?"}]
    first = client.chat.completions.create(
        model="mock-gpt", messages=messages, tools=[WEATHER_TOOL]
    )

    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    call = choice.message.tool_calls[0]
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert call.function.arguments == TOOL_ARGUMENTS
    assert json.loads(call.function.arguments) == {"city": "Oslo"}

    messages.append(choice.message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": "12 degrees and clear"})
    second = client.chat.completions.create(
        model="mock-gpt", messages=messages, tools=[WEATHER_TOOL]
    )

    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content == "The tool said: 12 degrees and clear"
    sent_up = upstream.last("/chat/completions").body["messages"]
    assert sent_up[1]["tool_calls"][0]["id"] == call.id
    assert sent_up[2] == {"role": "tool", "tool_call_id": call.id,
                          "content": "12 degrees and clear"}


def test_streamed_tool_call_deltas_reassemble(client: openai.OpenAI):
    stream = client.chat.completions.create(
        model="mock-gpt", messages=[{"role": "user", "content": "weather?"}],
        tools=[WEATHER_TOOL], stream=True,
    )
    calls: dict[int, dict[str, Any]] = {}
    finish = None
    fragments = 0
    for chunk in stream:
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        for tc in delta.tool_calls or []:
            fragments += 1
            call = calls.setdefault(tc.index, {"id": None, "name": None, "arguments": ""})
            if tc.id:
                call["id"] = tc.id
            if tc.function and tc.function.name:
                call["name"] = tc.function.name
            if tc.function and tc.function.arguments:
                call["arguments"] += tc.function.arguments
        finish = chunk.choices[0].finish_reason or finish

    assert finish == "tool_calls"
    assert fragments >= 2
    assert list(calls) == [0]
    assert calls[0]["id"] and calls[0]["id"].startswith("call_")
    assert calls[0]["name"] == "get_weather"
    assert json.loads(calls[0]["arguments"]) == {"city": "Oslo"}


def test_sdk_stream_helper_accumulates_tool_calls(client: openai.OpenAI):
    with client.chat.completions.stream(
        model="mock-gpt", messages=[{"role": "user", "content": "weather?"}],
        tools=[WEATHER_TOOL],
    ) as stream:
        final = stream.get_final_completion()
    call = final.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert call.function.arguments == TOOL_ARGUMENTS


# -- JSON mode and structured outputs -----------------------------------------


def test_json_object_response_format(client: openai.OpenAI, upstream: MockUpstream):
    completion = client.chat.completions.create(
        model="mock-gpt", messages=[{"role": "user", "content": "Answer in JSON."}],
        response_format={"type": "json_object"},
    )
    parsed = json.loads(completion.choices[0].message.content)
    assert parsed == {"answer": "You said: Answer in JSON.", "ok": True}
    assert upstream.last("/chat/completions").body["response_format"] == {"type": "json_object"}


def test_json_schema_response_format(client: openai.OpenAI, upstream: MockUpstream):
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "celsius": {"type": "number"},
                       "sunny": {"type": "boolean"}},
        "required": ["city", "celsius", "sunny"],
        "additionalProperties": False,
    }
    response_format = {"type": "json_schema",
                       "json_schema": {"name": "weather", "schema": schema, "strict": True}}
    completion = client.chat.completions.create(
        model="mock-gpt", messages=[{"role": "user", "content": "Weather as JSON."}],
        response_format=response_format,
    )
    parsed = json.loads(completion.choices[0].message.content)
    assert parsed == {"city": "Oslo", "celsius": 21.5, "sunny": True}
    assert upstream.last("/chat/completions").body["response_format"] == response_format


class Weather(pydantic.BaseModel):
    city: str
    celsius: float
    sunny: bool


def test_sdk_parse_helper_fills_a_pydantic_model(client: openai.OpenAI, upstream: MockUpstream):
    completion = client.chat.completions.parse(
        model="mock-gpt", messages=[{"role": "user", "content": "Weather as JSON."}],
        response_format=Weather,
    )
    assert completion.choices[0].message.parsed == Weather(city="Oslo", celsius=21.5, sunny=True)
    sent_format = upstream.last("/chat/completions").body["response_format"]
    assert sent_format["type"] == "json_schema"
    assert sent_format["json_schema"]["name"] == "Weather"


# -- Responses API --------------------------------------------------------------


def test_responses_create(client: openai.OpenAI, upstream: MockUpstream):
    response = client.responses.create(model="mock-gpt", input="ping from the compat suite")
    assert response.object == "response"
    assert response.status == "completed"
    assert response.output_text == EXPECTED_TEXT
    assert response.usage.total_tokens == (
        response.usage.input_tokens + response.usage.output_tokens)
    received = upstream.last("/responses")
    assert received.path == "/v1/responses"
    assert received.body["model"] == "upstream-gpt"


def test_responses_stream_of_named_events(client: openai.OpenAI):
    stream = client.responses.create(model="mock-gpt", input="ping from the compat suite",
                                     stream=True)
    events = list(stream)
    types = [e.type for e in events]
    assert types[0] == "response.created"
    assert types[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == EXPECTED_TEXT
    assert events[-1].response.output_text == EXPECTED_TEXT


def test_responses_stream_helper(client: openai.OpenAI):
    with client.responses.stream(model="mock-gpt", input="ping from the compat suite") as s:
        final = s.get_final_response()
    assert final.output_text == EXPECTED_TEXT


def test_demo_model_refuses_responses_with_bad_request(client: openai.OpenAI):
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(model="demo", input="hi")
    assert info.value.code == "unsupported_by_mock"


# -- models and embeddings ----------------------------------------------------


def test_models_list_returns_the_configured_models_in_order(client: openai.OpenAI):
    page = client.models.list()
    assert [m.id for m in page.data] == list(MODELS)
    assert {m.object for m in page.data} == {"model"}


def test_models_retrieve(client: openai.OpenAI):
    model = client.models.retrieve("demo")
    assert model.id == "demo"
    assert model.object == "model"
    assert isinstance(model.created, int)
    assert model.owned_by


def test_models_retrieve_names_with_colon_and_slash(client: openai.OpenAI):
    for name in ("qwen2.5:0.5b", "meta-llama/Llama-3-8B"):
        assert client.models.retrieve(name).id == name


def test_models_retrieve_unknown_raises_not_found(client: openai.OpenAI):
    with pytest.raises(openai.NotFoundError) as info:
        client.models.retrieve("no-such-model")
    assert info.value.code == "model_not_found"
    assert "`no-such-model`" in info.value.body["message"]


def test_embeddings_default_base64_decodes_to_floats(client: openai.OpenAI,
                                                      upstream: MockUpstream):
    result = client.embeddings.create(model="text-embedding-mock", input=["one", "two"])

    assert upstream.last("/embeddings").body["encoding_format"] == "base64"
    assert upstream.last("/embeddings").body["model"] == "upstream-embed"
    assert [d.index for d in result.data] == [0, 1]
    for item in result.data:
        assert isinstance(item.embedding, list)
        assert item.embedding == EMBEDDING
    assert result.usage.prompt_tokens == 2


def test_embeddings_as_floats(client: openai.OpenAI, upstream: MockUpstream):
    result = client.embeddings.create(
        model="text-embedding-mock", input="one", encoding_format="float"
    )
    assert upstream.last("/embeddings").body["encoding_format"] == "float"
    assert result.data[0].embedding == EMBEDDING


# -- the built-in `demo` model --------------------------------------------------


def test_demo_model_answers_with_usage(client: openai.OpenAI, upstream: MockUpstream):
    completion = client.chat.completions.create(model="demo", messages=HELLO)

    content = completion.choices[0].message.content
    assert "ping from the compat suite" in content
    assert completion.choices[0].finish_reason == "stop"
    usage = completion.usage
    assert usage.completion_tokens > 0 and usage.prompt_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert upstream.requests == []  # the built-in mock never leaves the router


def test_demo_model_streams_the_same_text_with_usage(client: openai.OpenAI):
    whole = client.chat.completions.create(model="demo", messages=HELLO)
    chunks = list(client.chat.completions.create(
        model="demo", messages=HELLO, stream=True, stream_options={"include_usage": True},
    ))

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 1
    assert chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    assert [c for c in chunks if c.choices][-1].choices[0].finish_reason == "stop"


def test_demo_model_serves_legacy_completions_and_embeddings(client: openai.OpenAI):
    completion = client.completions.create(model="demo", prompt="say hi", max_tokens=50)
    assert "say hi" in completion.choices[0].text
    embedding = client.embeddings.create(model="demo", input="hello")
    vector = embedding.data[0].embedding
    assert len(vector) > 0 and all(isinstance(x, float) for x in vector)


# -- headers ------------------------------------------------------------------


def test_raw_response_shows_request_id(client: openai.OpenAI, upstream: MockUpstream):
    raw = client.chat.completions.with_raw_response.create(model="mock-gpt", messages=HELLO)
    request_id = raw.headers.get("x-request-id")
    assert request_id
    assert not request_id.startswith(UPSTREAM_REQUEST_ID_PREFIX)  # ours, not the upstream's
    assert raw.headers.get("x-upstream-request-id", "").startswith(UPSTREAM_REQUEST_ID_PREFIX)
    assert upstream.last("/chat/completions").headers["x-request-id"] == request_id
    assert raw.parse().choices[0].message.content == EXPECTED_TEXT


def test_callers_request_id_is_kept_end_to_end(client: openai.OpenAI, upstream: MockUpstream):
    raw = client.chat.completions.with_raw_response.create(
        model="mock-gpt", messages=HELLO, extra_headers={"x-request-id": "compat-req-42"}
    )
    assert raw.headers["x-request-id"] == "compat-req-42"
    assert upstream.last("/chat/completions").headers["x-request-id"] == "compat-req-42"


# -- Switchyard's own errors ----------------------------------------------------


def test_unknown_model_raises_not_found(client: openai.OpenAI, upstream: MockUpstream):
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gpt-does-not-exist", messages=HELLO)
    e = info.value
    assert e.status_code == 404
    assert e.code == "model_not_found"
    assert e.type == "invalid_request_error"
    assert e.param == "model"
    assert "`gpt-does-not-exist`" in e.body["message"]
    assert set(error_json(e)["error"]) == {"message", "type", "param", "code"}
    assert e.request_id
    assert upstream.requests == []


def test_unknown_path_and_wrong_method_are_openai_errors(client: openai.OpenAI):
    with pytest.raises(openai.NotFoundError) as info:
        client.get("/no/such/route", cast_to=object)
    assert info.value.code == "unknown_url"
    with pytest.raises(openai.APIStatusError) as info:
        client.get("/chat/completions", cast_to=object)
    assert info.value.status_code == 405
    assert info.value.code == "method_not_allowed"
    assert info.value.response.headers["allow"] == "POST"


def test_malformed_json_raises_bad_request(client: openai.OpenAI):
    with pytest.raises(openai.BadRequestError) as info:
        client.post("/chat/completions", content=b'{"model": "mock-gpt", "messages": [',
                    cast_to=object, options={"headers": {"Content-Type": "application/json"}})
    e = info.value
    assert e.code == "invalid_json"
    assert e.type == "invalid_request_error"
    assert e.body["message"]


def test_model_of_the_wrong_type_raises_bad_request(client: openai.OpenAI):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="mock-gpt", messages=HELLO,
                                       extra_body={"model": 42})
    assert info.value.param == "model"
    assert info.value.code == "invalid_type"


def test_missing_model_raises_bad_request(client: openai.OpenAI):
    with pytest.raises(openai.BadRequestError) as info:
        client.post("/chat/completions", body={"messages": HELLO}, cast_to=object)
    assert info.value.param == "model"
    assert info.value.code == "missing_required_parameter"


def test_wrong_router_key_raises_authentication_error(auth_router: Router):
    with make_client(auth_router.base_url, api_key="sk-wrong") as c:
        with pytest.raises(openai.AuthenticationError) as info:
            c.chat.completions.create(model="demo", messages=HELLO)
        assert info.value.code == "invalid_api_key"
        with pytest.raises(openai.AuthenticationError):
            c.models.list()
    with make_client(auth_router.base_url, api_key=ROUTER_KEY) as c:
        assert c.chat.completions.create(model="demo", messages=HELLO).choices[0].message.content
        assert [m.id for m in c.models.list().data] == ["demo"]


def test_missing_router_key_is_401(auth_router: Router):
    body = json.dumps({"model": "demo", "messages": HELLO}).encode()
    request = urllib.request.Request(
        f"{auth_router.base_url}/chat/completions", data=body,
        headers={"Content-Type": "application/json"},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with pytest.raises(urllib.error.HTTPError) as info:
        opener.open(request, timeout=CLIENT_TIMEOUT_S)
    assert info.value.code == 401
    assert json.loads(info.value.read())["error"]["code"] == "invalid_api_key"


def test_unreachable_upstream_raises_502(router: Router):
    with make_client(router.base_url, max_retries=0) as c:
        with pytest.raises(openai.InternalServerError) as info:
            c.chat.completions.create(model="unreachable", messages=HELLO)
    e = info.value
    assert e.status_code == 502
    assert e.code == "upstream_unreachable"
    assert "`unreachable`" in e.body["message"]


def test_unset_variable_raises_503_that_the_sdk_does_not_retry(router: Router,
                                                               upstream: MockUpstream):
    sent = Sent()
    with make_client(router.base_url, max_retries=2, sent=sent) as c:
        with pytest.raises(openai.InternalServerError) as info:
            c.chat.completions.create(model="needs-key", messages=HELLO)
    e = info.value
    assert e.status_code == 503
    assert e.code == "upstream_not_configured"
    assert UNSET_VAR in e.body["message"]
    assert e.response.headers["x-should-retry"] == "false"
    assert len(sent) == 1  # the SDK obeyed x-should-retry
    assert upstream.requests == []


def test_upstream_first_byte_timeout_raises_504(router: Router, upstream: MockUpstream):
    with make_client(router.base_url, max_retries=0) as c:
        with pytest.raises(openai.InternalServerError) as info:
            c.chat.completions.create(model="slow", messages=HELLO)
    e = info.value
    assert e.status_code == 504
    assert e.code == "upstream_timeout"
    assert "`slow`" in e.body["message"]
    assert upstream.count("slow") == 1


def test_body_over_the_limit_raises_413(client: openai.OpenAI, upstream: MockUpstream):
    big = [{"role": "user", "content": "x" * (MAX_BODY_BYTES + 1)}]
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="mock-gpt", messages=big)
    e = info.value
    assert e.status_code == 413
    assert e.code == "request_too_large"
    assert str(MAX_BODY_BYTES) in e.body["message"]
    assert upstream.requests == []


# -- upstream errors and the SDK's retries ----------------------------------------


def test_upstream_429_passes_through_as_rate_limit_error(client: openai.OpenAI,
                                                         upstream: MockUpstream):
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="fail-429", messages=HELLO)
    e = info.value
    status, headers, body = FAILURES["fail-429"]
    assert e.status_code == status
    assert e.response.content == body  # byte for byte
    assert e.body == json.loads(body)["error"]
    assert e.code == "rate_limit_exceeded"
    assert e.response.headers["retry-after"] == headers["retry-after"]
    # retry-after: 0 fits retry.max_backoff, so the router retried once itself.
    assert upstream.count("fail-429") == 2
    assert e.response.headers["x-switchyard-attempts"] == "2"


def test_upstream_400_passes_through_unchanged(router: Router, upstream: MockUpstream):
    with make_client(router.base_url, max_retries=2) as c:
        with pytest.raises(openai.BadRequestError) as info:
            c.chat.completions.create(model="fail-400", messages=HELLO)
    e = info.value
    _, _, body = FAILURES["fail-400"]
    assert e.response.content == body
    assert error_json(e) == json.loads(body)
    assert e.param == "temperature" and e.code == "invalid_value"
    assert e.request_id and not e.request_id.startswith(UPSTREAM_REQUEST_ID_PREFIX)
    assert upstream.count("fail-400") == 1  # a 400 is not retried


@pytest.mark.parametrize(
    ("model", "error"),
    [("fail-429", openai.RateLimitError), ("fail-500", openai.InternalServerError)],
)
def test_router_retries_replace_the_sdks(router: Router, upstream: MockUpstream,
                                         model: str, error: type[Exception]):
    """The router retries once itself and then says x-should-retry: false, so a
    failing upstream sees 2 calls, not the SDK's 3 times the router's 2."""
    sent = Sent()
    with make_client(router.base_url, max_retries=2, sent=sent) as c:
        with pytest.raises(error) as info:
            c.chat.completions.create(model=model, messages=HELLO)
    assert len(sent) == 1  # the SDK obeyed x-should-retry: false
    assert upstream.count(model) == 2
    assert info.value.response.headers["x-should-retry"] == "false"
    assert info.value.response.content == FAILURES[model][2]


@pytest.mark.parametrize(
    ("model", "upstream_model", "error"),
    [
        ("fail-429-no-router-retry", "fail-429", openai.RateLimitError),
        ("fail-500-no-router-retry", "fail-500", openai.InternalServerError),
    ],
)
def test_sdk_retries_reach_the_upstream_three_times(router: Router, upstream: MockUpstream,
                                                    model: str, upstream_model: str,
                                                    error: type[Exception]):
    """With `retry: {attempts: 0}` the router makes one attempt and leaves
    retrying to the SDK, whose retries each reach the upstream."""
    sent = Sent()
    with make_client(router.base_url, max_retries=2, sent=sent) as c:
        with pytest.raises(error) as info:
            c.chat.completions.create(model=model, messages=HELLO)
    assert len(sent) == 3
    assert upstream.count(upstream_model) == 3
    retry_counts = [r.headers.get("x-stainless-retry-count") for r in upstream.requests]
    assert retry_counts == ["0", "1", "2"]
    assert "x-should-retry" not in info.value.response.headers
    assert info.value.response.content == FAILURES[upstream_model][2]


def test_client_keeps_working_after_a_failed_call(router: Router, upstream: MockUpstream):
    """After a 5xx (the router's retry of it included) the same client and its
    pooled connections serve the next call normally."""
    with make_client(router.base_url, max_retries=1) as c:
        with pytest.raises(openai.InternalServerError):
            c.chat.completions.create(model="fail-500", messages=HELLO)
        assert c.chat.completions.create(model="mock-gpt", messages=HELLO).choices
    assert upstream.count("fail-500") == 2
    assert upstream.count("upstream-gpt") == 1


# -- async ----------------------------------------------------------------------


def test_async_client_streams(router: Router, upstream: MockUpstream):
    async def run() -> tuple[str, Any]:
        async with openai.AsyncOpenAI(base_url=router.base_url, api_key=CLIENT_KEY,
                                      max_retries=0, timeout=CLIENT_TIMEOUT_S) as c:
            stream = await c.chat.completions.create(
                model="mock-gpt", messages=HELLO, stream=True,
                stream_options={"include_usage": True},
            )
            parts, usage = [], None
            async for chunk in stream:
                if chunk.choices:
                    parts.append(chunk.choices[0].delta.content or "")
                if chunk.usage:
                    usage = chunk.usage
            return "".join(parts), usage

    text, usage = asyncio.run(asyncio.wait_for(run(), CLIENT_TIMEOUT_S))
    assert text == EXPECTED_TEXT
    assert usage is not None and usage.total_tokens > 0
    assert upstream.last("/chat/completions").headers.get("x-stainless-async", "").startswith(
        "async")


def test_async_client_raises_the_same_errors(router: Router):
    async def run() -> None:
        async with openai.AsyncOpenAI(base_url=router.base_url, api_key=CLIENT_KEY,
                                      max_retries=0, timeout=CLIENT_TIMEOUT_S) as c:
            await c.chat.completions.create(model="gpt-does-not-exist", messages=HELLO)

    with pytest.raises(openai.NotFoundError) as info:
        asyncio.run(asyncio.wait_for(run(), CLIENT_TIMEOUT_S))
    assert info.value.code == "model_not_found"
