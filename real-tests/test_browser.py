"""The Streamlit chat app (examples/streamlit/) in headless Chromium, with
the real model answering through the router."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from conftest import MODEL


def test_chat_app_answers_with_the_real_model(page: Any, streamlit_app: Any,
                                             artifacts: Path) -> None:
    page.goto(streamlit_app.url + "/")
    chat_input = page.get_by_test_id("stChatInputTextArea")
    chat_input.wait_for()
    # The model list came from the router; SWITCHYARD_MODEL picked ours.
    expect(page.get_by_role("combobox", name="Model")).to_have_value(MODEL)
    prompt = "What is the capital of France?"
    chat_input.click()
    chat_input.fill(prompt)
    page.keyboard.press("Enter")

    messages = page.get_by_test_id("stChatMessage")
    answer = messages.nth(1)
    # Done streaming when the caption names the server that answered.
    answer.get_by_text(f"answered by llama-a/{MODEL}").wait_for()
    assert messages.count() == 2
    assert messages.nth(0).get_by_test_id("stChatMessageContent").inner_text().strip() == prompt
    text = answer.get_by_test_id("stMarkdown").first.inner_text().strip()
    assert text and not text.endswith("▌"), text
    # The app samples at the server's default temperature: any real words will do.
    assert sum(c.isalpha() for c in text) >= 3, text
    assert answer.get_by_test_id("stAlert").count() == 0
    page.screenshot(path=str(artifacts / "real-model-chat.png"))
