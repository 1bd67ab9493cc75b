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
    """A whole answer, with llama.cpp's own token counts."""
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=ask("What is the capital of France? Answer in one sentence."),
        max_tokens=40, temperature=0)
    completion = raw.parse()
    text = completion.choices[0].message.content or ""
    # The pinned model is Gemma 3 270M *base* (its GGUF has no chat template;
    # llama-server falls back to ChatML, docs/real-model.md): real text, not
    # a good answer. What is checked is that it is the model's text.
    assert len(words(text)) >= 3, text
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
    """A streamed answer, token by token, with the usage chunk asked for."""
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
    assert len(finish) == 1, finish
    assert len(usage) == 1, usage  # one usage chunk, the last one
    assert usage[0].prompt_tokens > 5 and usage[0].completion_tokens > 0, usage[0]


def test_client_hang_up_cancels_the_llama_task(stack: Stack) -> None:
    """The client closes a long stream after a few chunks: the router drops
    its upstream request, and llama-server stops generating (its log says
    it cancelled the task) long before the answer's end (2000 tokens asked
    for, 256 at most by the server's `-n`: seconds more of generation)."""
    # What llama-server logs (warning level) when a task's client is gone:
    #   W srv          stop: cancel task, id_task = 105
    cancelled = "stop: cancel task, id_task = "
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


#: The base model echoes this prompt and counts on, one number at a time:
#: a text whose every continuation can be checked (docs/real-model.md).
COUNT_PROMPT = "Count from 1 to 100: 1, 2, 3, 4, 5,"


def counted(text: str) -> list[int]:
    """The numbers of a counting answer after its echoed header."""
    return [int(n) for n in re.findall(r"\d+", text.split(":", 1)[-1])]


@pytest.mark.skipif(not _RESUME_OK,
                    reason=f"switchyard check refuses resume/prefill: {_RESUME_CHECK[-300:]}")
def test_stream_resumes_on_the_other_server_after_a_kill(resume_stack: Stack) -> None:
    """llama-a is killed (SIGKILL) in the middle of a streamed answer: the
    router continues it on llama-b from the text so far, and the client sees
    one well-formed stream that counts on where it stopped."""
    client = resume_stack.client()
    stream = client.chat.completions.create(
        model=MODEL, messages=ask(COUNT_PROMPT), max_tokens=240, temperature=0, stream=True,
        stream_options={"include_usage": True})
    before, after, finish, usage = "", "", [], []
    arrivals: list[float] = []
    killed_at = None
    ids = set()
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
                    if len(counted(before)) >= 20:
                        resume_stack.a.kill()
                        killed_at = time.monotonic()
                else:
                    after += content
                    arrivals.append(time.monotonic())
    finally:
        stream.close()
        client.close()

    whole = before + after
    assert killed_at is not None, f"the answer ended before 20 numbers: {before!r}"
    assert not resume_stack.a.alive()
    log = resume_stack.router.log()
    # The time from the kill to the first resumed token: the longest silence
    # after the kill ends with it (chunks already in flight from llama-a
    # arrive right after the kill).
    if arrivals:
        _, resumed_at = max((t - p, t) for p, t in zip([killed_at] + arrivals, arrivals))
        ms = re.findall(r"the stream continues on another target.*?\bms=([0-9.]+)", log)
        print(f"\nkill -> first resumed token at the client: "
              f"{(resumed_at - killed_at) * 1000:.0f} ms (router: break -> continuation's "
              f"first token {ms[-1] if ms else '?'} ms)")
    print(f"--- before the kill ---\n{before}\n--- after ---\n{after}")
    # One stream: one id, one finish_reason, one usage chunk.
    assert len(ids) == 1, ids
    assert len(finish) == 1, finish
    assert len(usage) == 1, usage
    # The router says so: the continuation's log line and the access line's count.
    assert "the stream continues on another target" in log, log[-3000:]
    access = [line for line in log.splitlines() if "resumes=" in line]
    assert access and "resumes=1" in access[-1], access
    assert f'target="llama-a/{MODEL}"' in access[-1], access[-1]
    # Measured (docs/real-model.md): llama-server continues a trailing
    # assistant message, but its answer starts with that message's text
    # again; the router removes that repeat, so the client gets each number
    # once.
    # Continued, not started again or repeated: the echoed header once, and
    # the numbers one after the other across the kill, well past it.
    assert whole.count("Count from") == 1, whole
    numbers = counted(whole)[:-1]  # the last one may be cut by max_tokens
    assert numbers == list(range(1, len(numbers) + 1)), whole
    assert len(numbers) >= len(counted(before)) + 10, whole
