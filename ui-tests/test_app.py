"""The chat app (examples/streamlit/app.py) under Streamlit's AppTest,
against the real `switchyard` binary: each test runs the whole script the
way a browser session would, streams included, and reads what it drew."""

from __future__ import annotations

from typing import Any

from conftest import MODELS, mock_reply
from cut_upstream import PARTIAL_TEXT


def transcript(at: Any) -> list[tuple[str, list[str]]]:
    """(role, markdown texts) per chat message, top to bottom."""
    return [(m.name, [md.value for md in m.markdown]) for m in at.chat_message]


def send(at: Any, text: str) -> Any:
    at.chat_input[0].set_value(text).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def errors(block: Any) -> list[str]:
    return [e.value for e in block.error]


def test_models_come_from_the_router(app: Any) -> None:
    assert not app.exception
    assert app.selectbox(key="model").options == MODELS
    assert app.selectbox(key="model").value == "demo"
    assert not errors(app)
    assert not app.chat_message  # an empty transcript
    assert not app.chat_input[0].disabled


def test_answer_is_streamed_into_the_transcript(app: Any) -> None:
    send(app, "Hello, Switchyard!")
    assert transcript(app) == [
        ("user", ["Hello, Switchyard!"]),
        ("assistant", [mock_reply("demo", "Hello, Switchyard!")]),
    ]
    answer = app.chat_message[1]
    assert not errors(answer)
    # The target that answered, from the x-switchyard-target header.
    assert "answered by `mock/demo`" in answer.caption[0].value


def test_the_conversation_goes_on_with_the_model_picked(app: Any) -> None:
    send(app, "first")
    app.selectbox(key="model").set_value("demo-2").run()
    send(app, "second")
    assert transcript(app) == [
        ("user", ["first"]),
        ("assistant", [mock_reply("demo", "first")]),
        ("user", ["second"]),
        ("assistant", [mock_reply("demo-2", "second")]),
    ]
    assert "answered by `mock-2/demo-2`" in app.chat_message[3].caption[0].value
    # The history stays in session state across reruns.
    assert [t["role"] for t in app.session_state["history"]] == [
        "user", "assistant", "user", "assistant"]


def test_clear_chat_empties_the_transcript(app: Any) -> None:
    send(app, "to be forgotten")
    assert len(app.chat_message) == 2
    next(b for b in app.sidebar.button if b.label == "Clear chat").click().run()
    assert not app.chat_message
    assert app.session_state["history"] == []


def test_compare_mode_streams_both_models_side_by_side(app: Any) -> None:
    app.toggle(key="compare").set_value(True).run()
    assert app.selectbox(key="model_b").value == "demo-2"  # the first other model
    send(app, "Which of you is faster?")
    answer = app.chat_message[1]
    assert answer.name == "assistant"
    left, right = answer.columns
    assert [m.value for m in left.markdown] == [
        "**demo**", mock_reply("demo", "Which of you is faster?")]
    assert [m.value for m in right.markdown] == [
        "**demo-2**", mock_reply("demo-2", "Which of you is faster?")]
    assert "answered by `mock/demo`" in left.caption[0].value
    assert "answered by `mock-2/demo-2`" in right.caption[0].value
    assert not errors(answer)


def test_compare_mode_with_one_model_failing(app: Any) -> None:
    app.toggle(key="compare").set_value(True).run()
    app.selectbox(key="model_b").set_value("broken").run()
    send(app, "one of us is down")
    left, right = app.chat_message[1].columns
    assert mock_reply("demo", "one of us is down") in [m.value for m in left.markdown]
    assert not errors(left)
    assert [m.value for m in right.markdown] == ["**broken**"]
    [error] = errors(right)
    assert error.startswith("Switchyard answered 502 upstream_unreachable: ")


def test_switchyard_down_says_so(make_app: Any, refused_port: int) -> None:
    base_url = f"http://127.0.0.1:{refused_port}/v1"
    at = make_app(base_url)
    assert not at.exception
    expected = (f"Cannot reach Switchyard at {base_url} — is it running? "
                "(cargo run --release)")
    assert expected in errors(at.main)
    assert at.chat_input[0].disabled  # nothing to send to
    assert not at.selectbox  # no models to pick from
    # "Try again" asks again (and still finds nothing), without a traceback.
    next(b for b in at.sidebar.button if b.label == "Try again").click().run()
    assert not at.exception
    assert expected in errors(at.main)


def test_switchyard_going_down_mid_chat(make_app: Any, spare_router: Any) -> None:
    at = make_app(spare_router.base_url)
    send(at, "still there?")
    assert mock_reply("demo", "still there?") in transcript(at)[1][1]
    spare_router.stop()
    send(at, "hello?")
    answer = at.chat_message[3]
    assert [m.value for m in answer.markdown] == []
    assert errors(answer) == [f"Cannot reach Switchyard at {spare_router.base_url} — "
                              "is it running? (cargo run --release)"]


def test_router_error_message_is_shown(app: Any, refused_port: int) -> None:
    app.selectbox(key="model").set_value("broken").run()
    send(app, "anyone home?")
    answer = app.chat_message[1]
    assert [m.value for m in answer.markdown] == []
    # Switchyard's own message, as it sent it, after the status and code.
    assert errors(answer) == [
        "Switchyard answered 502 upstream_unreachable: The model `broken` could not be "
        f"served: cannot connect to upstream `closed` at http://127.0.0.1:{refused_port}/v1: "
        "Connection refused (os error 111). Check that the upstream is running and "
        "reachable from Switchyard."]
    # The app keeps working: the next question to a good model is answered.
    app.selectbox(key="model").set_value("demo").run()
    send(app, "and now?")
    assert transcript(app)[3] == ("assistant", [mock_reply("demo", "and now?")])


def test_stream_that_ends_in_an_error_keeps_the_partial_answer(app: Any) -> None:
    app.selectbox(key="model").set_value("cut").run()
    send(app, "tell me everything")
    answer = app.chat_message[1]
    assert [m.value for m in answer.markdown] == [PARTIAL_TEXT]
    assert errors(answer) == [
        "The answer stopped with an error (upstream_stream_interrupted): The upstream "
        "`cut` stream broke off before it finished; the answer is incomplete. Retry the "
        "request."]
    assert "answered by `cut/cut`" in answer.caption[0].value
    # The partial answer stays in the history, so the next turn sees it.
    assert app.session_state["history"][1]["answers"][0]["content"] == PARTIAL_TEXT


def test_fallback_model_is_named(app: Any) -> None:
    app.selectbox(key="model").set_value("failover").run()
    send(app, "who answers?")
    answer = app.chat_message[1]
    # The router moved on to the fallback model; the headers say which.
    assert [m.value for m in answer.markdown] == [mock_reply("demo-2", "who answers?")]
    caption = answer.caption[0].value
    assert caption.startswith("`failover` · answered by `mock-2/demo-2` · fallback `demo-2`")
    assert not errors(answer)


def test_wrong_router_key_shows_the_routers_message(make_app: Any, auth_router: Any) -> None:
    at = make_app(auth_router.base_url)
    assert not at.exception
    [error] = errors(at.main)
    assert error.startswith("Switchyard answered 401 invalid_api_key: "), error
    assert at.chat_input[0].disabled
