"""End to end in a real browser: `streamlit run` serving the chat app, the
real `switchyard` binary behind it, Debian's Chromium driven by Playwright.
Screenshots go to artifacts/ (gitignored) for a person to look at."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from conftest import mock_reply

#: Records, on every DOM change, the text of the newest assistant answer
#: while it streams; read back as `window.__answerStates`.
RECORD_ANSWER_STATES = """() => {
  window.__answerStates = [];
  const record = () => {
    const messages = document.querySelectorAll('[data-testid="stChatMessage"]');
    const last = messages[messages.length - 1];
    if (!last || !last.querySelector('[data-testid="stChatMessageAvatarAssistant"]')) return;
    const body = last.querySelector('[data-testid="stMarkdown"]');
    const text = body ? body.innerText.trim() : "";
    const seen = window.__answerStates;
    if (text && seen[seen.length - 1] !== text) seen.push(text);
  };
  new MutationObserver(record).observe(document.body,
    { subtree: true, childList: true, characterData: true });
}"""


def open_app(page: Any, streamlit_app: Any) -> Any:
    page.goto(streamlit_app.url + "/")
    chat_input = page.get_by_test_id("stChatInputTextArea")
    chat_input.wait_for()
    # The model list came from the router: the picker shows the default.
    expect(page.get_by_role("combobox", name="Model")).to_have_value("demo")
    return chat_input


def say(page: Any, chat_input: Any, text: str) -> None:
    chat_input.click()
    chat_input.fill(text)
    page.keyboard.press("Enter")


def rendered(markdown: str) -> str:
    """The text a browser shows for the mock's Markdown (inline code unquoted)."""
    return markdown.replace("`", "")


def test_chat_in_the_browser(page: Any, streamlit_app: Any, artifacts: Path) -> None:
    chat_input = open_app(page, streamlit_app)
    page.evaluate(RECORD_ANSWER_STATES)
    prompt = "Hello from a real browser!"
    say(page, chat_input, prompt)

    messages = page.get_by_test_id("stChatMessage")
    answer = messages.nth(1)
    # Done streaming when the caption names the target that answered.
    answer.get_by_text("answered by mock/demo").wait_for()
    assert messages.count() == 2
    assert messages.nth(0).get_by_test_id("stChatMessageContent").inner_text().strip() == prompt
    expected = rendered(mock_reply("demo", prompt))
    assert answer.get_by_test_id("stMarkdown").first.inner_text().strip() == expected
    assert 'You said: "Hello from a real browser!"' in answer.inner_text()

    # It streamed: the browser showed the answer growing, not only whole.
    states = page.evaluate("window.__answerStates")
    # (The first state can be the cursor alone, before the first token.)
    partial = [s for s in states if s not in (expected, "▌")]
    assert len(partial) >= 3, states
    assert all(s.startswith("Hello") and s.endswith("▌") for s in partial), states
    assert states[-1] == expected, states

    page.screenshot(path=str(artifacts / "streamlit.png"))


def test_compare_in_the_browser(page: Any, streamlit_app: Any, artifacts: Path) -> None:
    chat_input = open_app(page, streamlit_app)
    page.get_by_text("Compare two models").click()
    page.get_by_text("Second model").wait_for()
    prompt = "Which one of you answers first?"
    say(page, chat_input, prompt)
    answer = page.get_by_test_id("stChatMessage").nth(1)
    answer.get_by_text("answered by mock/demo", exact=False).first.wait_for()
    answer.get_by_text("answered by mock-2/demo-2").wait_for()
    columns = answer.get_by_test_id("stColumn")
    assert columns.count() == 2
    assert rendered(mock_reply("demo", prompt)) in columns.nth(0).inner_text()
    assert rendered(mock_reply("demo-2", prompt)) in columns.nth(1).inner_text()
    page.screenshot(path=str(artifacts / "streamlit-compare.png"))


def test_typed_unknown_model_shows_the_routers_message(page: Any, streamlit_app: Any) -> None:
    chat_input = open_app(page, streamlit_app)
    # The picker takes a name that is not in the list, as a person would type it.
    picker = page.get_by_role("combobox", name="Model")
    picker.click()
    picker.fill("no-such-model")
    page.keyboard.press("Enter")
    expect(picker).to_have_value("no-such-model")
    # (The chat message below carries every widget's value, this one's too.)
    page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for()
    say(page, chat_input, "Is anybody there?")
    alert = page.get_by_test_id("stChatMessage").nth(1).get_by_test_id("stAlert")
    alert.wait_for()
    text = alert.inner_text()
    assert text.startswith("Switchyard answered 404 model_not_found: The model no-such-model "
                           "does not exist on this router."), text


def test_new_message_while_an_answer_streams(page: Any, streamlit_app: Any,
                                             router: Any) -> None:
    chat_input = open_app(page, streamlit_app)
    picker = page.get_by_role("combobox", name="Model")
    picker.click()
    picker.fill("slow")
    page.keyboard.press("Enter")
    expect(picker).to_have_value("slow")
    say(page, chat_input, "first question")
    messages = page.get_by_test_id("stChatMessage")
    messages.nth(1).get_by_text("Hello from Switchyard!").wait_for()  # streaming now
    say(page, chat_input, "second question")
    messages.nth(3).get_by_text("answered by mock-slow/slow").wait_for()
    # The first answer stays as far as it got, marked as stopped ...
    first = messages.nth(1).get_by_test_id("stMarkdown").first.inner_text()
    assert first.startswith("Hello from Switchyard!"), first
    assert 'You said: "first question"' not in first
    messages.nth(1).get_by_text("stopped").wait_for()
    # ... the second is whole ...
    assert 'You said: "second question"' in messages.nth(3).inner_text()
    # ... and the app hung up on the first, so the router stopped generating.
    assert 'model="slow"' in router.log()
    assert 'outcome="client_cancelled"' in router.log()


def test_status_page(page: Any, router: Any, artifacts: Path) -> None:
    """The router's own status page at `GET /` lists the test router's models."""
    page.goto(router.url + "/")
    models = page.locator("#models")
    # Filled in by the page's script from the router's JSON endpoints.
    for name in ("demo", "demo-2", "broken", "cut"):
        expect(models).to_contain_text(name)
    expect(models).to_contain_text("mock-2/demo-2")  # a target, upstream/model
    page.screenshot(path=str(artifacts / "status-page.png"), full_page=True)
