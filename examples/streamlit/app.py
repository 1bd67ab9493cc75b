"""A chat app on Switchyard, with the official OpenAI Python SDK.

    pip install -r examples/streamlit/requirements.txt
    streamlit run examples/streamlit/app.py

Environment:
    SWITCHYARD_BASE_URL  the router's OpenAI base URL (default http://localhost:8000/v1)
    SWITCHYARD_API_KEY   the router key, when `server.auth.keys` is set (default sk-anything)
    SWITCHYARD_MODEL     the model picked first, when the router serves it (default: demo)

Pick a model in the sidebar (the list is Switchyard's `GET /v1/models`), or
turn on "Compare two models" to send each prompt to two models at once and
watch both answers stream side by side.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from typing import Any, Iterator

import openai
import streamlit as st

BASE_URL = os.environ.get("SWITCHYARD_BASE_URL", "http://localhost:8000/v1").rstrip("/")
API_KEY = os.environ.get("SWITCHYARD_API_KEY", "sk-anything")
DEFAULT_MODEL = os.environ.get("SWITCHYARD_MODEL", "demo")

#: How long the model list is kept before it is asked for again.
MODELS_TTL_S = 30
#: Switchyard answers at once when it is up; a local model may take minutes
#: to load before its first token, so reads may be slow.
CLIENT_TIMEOUT = openai.Timeout(600.0, connect=5.0)
#: Shown after the text while an answer is still streaming.
CURSOR = " ▌"


# -- talking to Switchyard ---------------------------------------------------


@st.cache_resource(show_spinner=False)
def get_client(base_url: str, api_key: str) -> openai.OpenAI:
    # Switchyard retries and fails over by itself, so the SDK does not retry
    # (and an unreachable router is reported at once, not after backoffs).
    return openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0,
                         timeout=CLIENT_TIMEOUT)


@st.cache_data(ttl=MODELS_TTL_S, show_spinner=False)
def list_models(base_url: str, api_key: str) -> list[str]:
    """Model ids from `GET /v1/models`, in the router's (config) order.
    Exceptions are not cached, so a router that comes up is seen at once."""
    return [m.id for m in get_client(base_url, api_key).models.list()]


def error_text(e: BaseException) -> str:
    """A one-paragraph explanation of `e` for the user; never a traceback."""
    if isinstance(e, openai.APITimeoutError):
        return f"Switchyard at {BASE_URL} did not answer in time ({CLIENT_TIMEOUT.read:.0f} s)."
    if isinstance(e, openai.APIConnectionError):
        return f"Cannot reach Switchyard at {BASE_URL} — is it running? (cargo run --release)"
    if isinstance(e, openai.APIError):
        # Switchyard's errors are OpenAI-format; the SDK keeps the `error`
        # object as `body`. A status error was the answer; a plain APIError
        # was an error event at the end of a stream that had started.
        body = e.body if isinstance(e.body, dict) else {}
        message = body.get("message") or e.message
        code = body.get("code")
        if isinstance(e, openai.APIStatusError):
            where = f"{e.status_code} {code}" if code else str(e.status_code)
            return f"Switchyard answered {where}: {message}"
        where = f" ({code})" if code else ""
        return f"The answer stopped with an error{where}: {message}"
    # Anything else (the connection cut mid-stream, a bug): say what it was.
    return f"Unexpected error talking to Switchyard: {type(e).__name__}: {e}"


def stream_worker(client: openai.OpenAI, lane: int, model: str,
                  messages: list[dict[str, str]], events: queue.Queue,
                  cancel: threading.Event) -> None:
    """Streams one answer into `events` as (lane, kind, payload) tuples and
    always ends with (lane, "done", None). Runs in its own thread and never
    touches Streamlit: the script thread draws what it reads from the queue.
    When `cancel` is set (the script run was stopped), it hangs up, and
    Switchyard stops the upstream's generation."""
    try:
        raw = client.chat.completions.with_raw_response.create(
            model=model, messages=messages, stream=True)
        events.put((lane, "headers", dict(raw.headers)))
        stream = raw.parse()
        try:
            for chunk in stream:
                if cancel.is_set():
                    break
                for choice in chunk.choices or []:
                    text = choice.delta.content if choice.delta else None
                    if text:
                        events.put((lane, "delta", text))
        finally:
            stream.close()
    except Exception as e:  # reported to the user by the script thread
        events.put((lane, "error", e))
    finally:
        events.put((lane, "done", None))


# -- the transcript ------------------------------------------------------------
#
# st.session_state.history is a list of turns:
#   {"role": "user", "content": str}
#   {"role": "assistant", "answers": [answer, ...]}  (two answers in compare mode)
# with answer = {"model", "content", "error", "target", "served_by", "seconds"}.


def new_answer(model: str) -> dict[str, Any]:
    return {"model": model, "content": "", "error": None, "target": None,
            "served_by": None, "seconds": None}


def messages_for(history: list[dict[str, Any]], lane: int) -> list[dict[str, str]]:
    """The conversation as the model in `lane` saw it: its own earlier
    answers (lane 0's where it had none), without failed empty ones."""
    out: list[dict[str, str]] = []
    for turn in history:
        if turn["role"] == "user":
            out.append({"role": "user", "content": turn["content"]})
            continue
        answers = turn["answers"]
        answer = answers[lane] if lane < len(answers) else answers[0]
        if answer["content"]:
            out.append({"role": "assistant", "content": answer["content"]})
    return out


def answer_caption(answer: dict[str, Any]) -> str:
    parts = [f"`{answer['model']}`"]
    if answer["target"]:
        parts.append(f"answered by `{answer['target']}`")
    if answer["served_by"] and answer["served_by"] != answer["model"]:
        parts.append(f"fallback `{answer['served_by']}`")
    if answer["seconds"] is not None:
        parts.append(f"{answer['seconds']:.1f} s")
    else:  # the run was stopped (a new message came) before the answer ended
        parts.append("stopped")
    return " · ".join(parts)


class AnswerView:
    """Where one answer is drawn: its text, its error, and a caption."""

    def __init__(self, show_model: bool, model: str) -> None:
        if show_model:
            st.markdown(f"**{model}**")
        self.body = st.empty()
        self.error = st.empty()
        self.caption = st.empty()

    def draw(self, answer: dict[str, Any], streaming: bool = False) -> None:
        if answer["content"] or streaming:
            self.body.markdown(answer["content"] + (CURSOR if streaming else ""))
        else:
            self.body.empty()
        if answer["error"]:
            self.error.error(answer["error"])
        if not streaming:
            self.caption.caption(answer_caption(answer))


def answer_views(answers: list[dict[str, Any]]) -> list[AnswerView]:
    """One view per answer: side by side in columns when there are two."""
    if len(answers) == 1:
        return [AnswerView(False, answers[0]["model"])]
    views = []
    for column, answer in zip(st.columns(len(answers)), answers):
        with column:
            views.append(AnswerView(True, answer["model"]))
    return views


def draw_history(history: list[dict[str, Any]]) -> None:
    for turn in history:
        if turn["role"] == "user":
            with st.chat_message("user"):
                st.markdown(turn["content"])
        else:
            with st.chat_message("assistant"):
                for view, answer in zip(answer_views(turn["answers"]), turn["answers"]):
                    view.draw(answer)


@contextlib.contextmanager
def _set_on_exit(event: threading.Event) -> Iterator[None]:
    try:
        yield
    finally:
        event.set()


def ask(client: openai.OpenAI, history: list[dict[str, Any]], models: list[str]) -> None:
    """Streams the answers of `models` to the last user turn, all at once,
    into the transcript; the turn is in `history` from the start, so a
    partial answer stays if the run is cut short."""
    turn = {"role": "assistant", "answers": [new_answer(m) for m in models]}
    conversations = [messages_for(history, lane) for lane in range(len(models))]
    history.append(turn)
    events: queue.Queue = queue.Queue()
    cancel = threading.Event()
    started = time.monotonic()
    # A new message or the Stop button ends this run with an exception at
    # the next Streamlit call; the workers then hang up (see stream_worker).
    with st.chat_message("assistant"), _set_on_exit(cancel):
        views = answer_views(turn["answers"])
        for view, answer in zip(views, turn["answers"]):
            view.draw(answer, streaming=True)
        for lane, (model, messages) in enumerate(zip(models, conversations)):
            threading.Thread(target=stream_worker, name=f"switchyard-{lane}", daemon=True,
                             args=(client, lane, model, messages, events, cancel)).start()
        running = set(range(len(models)))
        while running:
            # Each worker ends with "done" (the SDK's timeouts bound it).
            batch = [events.get()]
            while True:  # draw everything that arrived meanwhile at once
                try:
                    batch.append(events.get_nowait())
                except queue.Empty:
                    break
            touched = set()
            for lane, kind, payload in batch:
                answer = turn["answers"][lane]
                touched.add(lane)
                if kind == "headers":
                    answer["target"] = payload.get("x-switchyard-target")
                    answer["served_by"] = payload.get("x-switchyard-model")
                elif kind == "delta":
                    answer["content"] += payload
                elif kind == "error":
                    answer["error"] = error_text(payload)
                elif kind == "done":
                    answer["seconds"] = time.monotonic() - started
                    running.discard(lane)
            for lane in touched:
                views[lane].draw(turn["answers"][lane], streaming=lane in running)


# -- the page ------------------------------------------------------------------


def pick_models(models: list[str]) -> list[str]:
    """The sidebar; returns the models to ask (one, or two to compare)."""
    first = models.index(DEFAULT_MODEL) if DEFAULT_MODEL in models else 0
    model = st.selectbox("Model", models, index=first, key="model",
                         accept_new_options=True,
                         help="From Switchyard's GET /v1/models; type a name to try another.")
    picked = [model]
    if st.toggle("Compare two models", key="compare"):
        other = next((i for i, m in enumerate(models) if m != model), 0)
        second = st.selectbox("Second model", models, index=other, key="model_b",
                              accept_new_options=True)
        picked.append(second)
    return [m for m in picked if m]


def main() -> None:
    st.set_page_config(page_title="Switchyard chat", page_icon="🚦", layout="wide")
    history: list[dict[str, Any]] = st.session_state.setdefault("history", [])
    client = get_client(BASE_URL, API_KEY)

    with st.sidebar:
        st.header("Switchyard")
        st.caption(f"Router: `{BASE_URL}`")
        try:
            models = list_models(BASE_URL, API_KEY)
            problem = None if models else (
                f"Switchyard at {BASE_URL} serves no models: add some to its router.yaml.")
        except Exception as e:
            models, problem = [], error_text(e)
        picked = pick_models(models) if models else []
        left, right = st.columns(2)
        if left.button("Refresh" if models else "Try again"):
            list_models.clear()
            st.rerun()
        if right.button("Clear chat"):
            history.clear()
            st.rerun()

    st.title("Switchyard chat")
    if problem:
        st.error(problem)
    elif not history:
        st.caption("Every message goes through Switchyard, which routes it by model name "
                   "to the upstream that serves it.")
    draw_history(history)

    prompt = st.chat_input("Say something", disabled=not picked)
    if prompt and picked:
        history.append({"role": "user", "content": prompt})
        with st.chat_message("user"):
            st.markdown(prompt)
        ask(client, history, picked)


main()
