"""Switchyard in front of two real llama.cpp servers with a real model:
answers with real usage, streams, a client hanging up, failover, and a
stream resumed on the other server after its first one dies mid-answer."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import openai
import pytest

from conftest import MODEL, Stack, check_config, router_config, wait_until

#: A prompt the model answers at length (the tests stop it, or count it).
LONG_PROMPT = "Write a long story about a lighthouse keeper and a storm."
#: How long llama-server may take to log that it dropped a cancelled task.
CANCEL_DEADLINE_S = 15.0


def ask(prompt: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": prompt}]


def words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z']+", text)


def test_answer_with_real_usage(client: openai.OpenAI, stack: Stack) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=ask("What is the capital of France? Answer in one sentence."),
        max_tokens=40, temperature=0)
    completion = raw.parse()
    text = completion.choices[0].message.content or ""
    assert "Paris" in text, text
    assert completion.usage is not None
    # Counted by llama.cpp's tokenizer: the prompt with its chat template.
    assert completion.usage.prompt_tokens > 10, completion.usage
    assert 0 < completion.usage.completion_tokens <= 40, completion.usage
    assert completion.usage.total_tokens == (completion.usage.prompt_tokens
                                             + completion.usage.completion_tokens)
    assert completion.choices[0].finish_reason in ("stop", "length")
    # Priority order: the first server answered.
    assert raw.headers["x-switchyard-target"] == f"llama-a/{MODEL}"


def test_stream_with_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=MODEL, messages=ask("Name three colours of the rainbow."), max_tokens=60,
        temperature=0, stream=True, stream_options={"include_usage": True})
    text, finish, usage, content_chunks = "", [], [], 0
    for chunk in stream:
        if chunk.usage is not None:
            usage.append(chunk.usage)
        for choice in chunk.choices:
            if choice.delta.content:
                text += choice.delta.content
                content_chunks += 1
            if choice.finish_reason:
                finish.append(choice.finish_reason)
    assert content_chunks >= 3, text  # it streamed, token by token
    assert len(words(text)) >= 3, text
    assert any(colour in text.lower() for colour in ("red", "orange", "yellow", "green",
                                                     "blue", "indigo", "violet")), text
    assert len(finish) == 1, finish
    assert len(usage) == 1, usage  # one usage chunk, the last one
    assert usage[0].prompt_tokens > 5 and usage[0].completion_tokens > 0, usage[0]


def test_client_hang_up_cancels_the_llama_task(stack: Stack) -> None:
    """The client closes a long stream after a few chunks: the router drops
    its upstream request, and llama-server stops generating (its log says
    it cancelled the task) well before the 2000 tokens asked for."""
    cancelled = "cancel task"
    before = stack.a.log().count(cancelled)
    client = stack.client()
    stream = client.chat.completions.create(
        model=MODEL, messages=ask(LONG_PROMPT), max_tokens=2000, temperature=0, stream=True)
    received = 0
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            received += 1
            if received == 5:
                break
    stream.close()
    client.close()
    hung_up = time.monotonic()
    assert received == 5
    assert wait_until(lambda: stack.a.log().count(cancelled) > before, CANCEL_DEADLINE_S), (
        f"llama-a never logged {cancelled!r} within {CANCEL_DEADLINE_S}s of the hang-up")
    print(f"\nllama-server logged {cancelled!r} {time.monotonic() - hung_up:.2f}s after the hang-up")
    assert wait_until(lambda: 'outcome="client_cancelled"' in stack.router.log(), 10.0), (
        "the router's access line does not say the client cancelled")


def test_failover_before_the_first_token(own_stack: Stack) -> None:
    """llama-a dies: the next request is answered by llama-b."""
    client = own_stack.client()
    try:
        first = client.chat.completions.with_raw_response.create(
            model=MODEL, messages=ask("Say hello."), max_tokens=10, temperature=0)
        assert first.headers["x-switchyard-target"] == f"llama-a/{MODEL}"
        own_stack.a.kill()
        for stream in (False, True):
            raw = client.chat.completions.with_raw_response.create(
                model=MODEL, messages=ask("Say hello."), max_tokens=10, temperature=0,
                stream=stream)
            assert raw.headers["x-switchyard-target"] == f"llama-b/{MODEL}"
            assert raw.headers["x-switchyard-attempts"] == "2"
            parsed: Any = raw.parse()
            if stream:
                text = "".join(c.choices[0].delta.content or "" for c in parsed if c.choices)
            else:
                text = parsed.choices[0].message.content or ""
            assert text.strip(), text
    finally:
        client.close()


def _resume_support() -> tuple[bool, str]:
    """Whether this switchyard accepts `resume` on a model and `prefill` on
    an upstream (`switchyard check` on the config the test uses)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        result = check_config(router_config("http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1",
                                            resume=True), Path(tmp))
    return result.returncode == 0, (result.stdout + result.stderr).strip()


_RESUME_OK, _RESUME_CHECK = _resume_support()


@pytest.mark.skipif(not _RESUME_OK,
                    reason=f"switchyard check refuses resume/prefill: {_RESUME_CHECK[-300:]}")
def test_stream_resumes_on_the_other_server_after_a_kill(resume_stack: Stack) -> None:
    """llama-a is killed (SIGKILL) in the middle of a streamed answer: the
    router continues it on llama-b from the text so far, and the client sees
    one well-formed stream."""
    client = resume_stack.client()
    stream = client.chat.completions.create(
        model=MODEL, messages=ask(LONG_PROMPT), max_tokens=300, temperature=0, stream=True,
        stream_options={"include_usage": True})
    before, after, finish, usage = "", "", [], []
    arrivals: list[float] = []
    killed_at = None
    ids, chunks_after = set(), 0
    try:
        assert stream.response.headers["x-switchyard-target"] == f"llama-a/{MODEL}"
        for chunk in stream:  # bounded: max_tokens, and the client's timeout
            ids.add(chunk.id)
            if chunk.usage is not None:
                usage.append(chunk.usage)
            for choice in chunk.choices:
                if choice.finish_reason:
                    finish.append(choice.finish_reason)
                content = choice.delta.content or ""
                if not content:
                    continue
                if killed_at is None:
                    before += content
                    if len(words(before)) >= 20:
                        resume_stack.a.kill()
                        killed_at = time.monotonic()
                else:
                    after += content
                    chunks_after += 1
                    arrivals.append(time.monotonic())
    finally:
        stream.close()
        client.close()

    assert killed_at is not None, f"the answer ended before 20 words: {before!r}"
    assert not resume_stack.a.alive()
    # One stream: one id, one finish_reason, one usage chunk, text after the kill.
    assert len(ids) == 1, ids
    assert len(finish) == 1, finish
    assert len(usage) == 1, usage
    assert len(words(after)) >= 10, after
    whole = before + after
    # Continued, not started again: the answer's opening is not repeated.
    opening = before.strip()[:40]
    assert whole.count(opening) == 1, whole
    # The router says so: the continuation's log line and the access line's count.
    log = resume_stack.router.log()
    assert "the stream continues on another target" in log, log[-3000:]
    access = [line for line in log.splitlines() if "resumes=" in line]
    assert access and "resumes=1" in access[-1], access
    assert f'target="llama-a/{MODEL}"' in access[-1], access[-1]
    # The time from the kill to the first resumed token: the longest silence
    # after the kill ends with it (chunks already in flight from llama-a
    # arrive right after the kill).
    gaps = [(t - p, t) for p, t in zip([killed_at] + arrivals, arrivals)]
    _, resumed_at = max(gaps)
    ms = re.findall(r"the stream continues on another target.*?\bms=([0-9.]+)", log)
    print(f"\nkill -> first resumed token at the client: {(resumed_at - killed_at) * 1000:.0f} ms"
          f" (router: break -> continuation's first token {ms[-1] if ms else '?'} ms); "
          f"{len(words(before))} words before the kill, {len(words(after))} after\n"
          f"--- before the kill ---\n{before}\n--- after ---\n{after}")
