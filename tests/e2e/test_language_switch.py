"""A reader switches the app to 简体中文 and back on a page without losing what they entered there; the choice
lives in the URL (reloads keep it); a browser that prefers Chinese starts in Chinese."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import goto, screenshot, until, wait_for_app

pytestmark = pytest.mark.e2e


def _heading(page) -> str:
    return page.locator("h1").first.inner_text()


def _switch_to(page, language: str) -> None:
    """Click the sidebar switch; while a rerun redraws the page Streamlit may briefly show two copies of it."""
    choice = page.get_by_text(language, exact=True)
    until(page, lambda: choice.count() == 1, f"one {language} switch")
    choice.click()


def test_switching_language_keeps_the_page_state_and_the_url_remembers_it(page, app_server):
    goto(page, app_server, "backprop")
    rate = page.get_by_label("Learning rate η")
    rate.fill("0.5")
    rate.press("Enter")
    wait_for_app(page)
    assert "Backpropagation" in _heading(page)

    _switch_to(page, "简体中文")  # the switch in the sidebar
    until(page, lambda: "反向传播" in _heading(page), "the page in Chinese")
    until(page, lambda: "lang=zh" in page.url, "the language in the URL")
    assert page.get_by_label("学习率 η").input_value() == "0.5"  # what the reader typed is still there
    screenshot(page, "language-zh-backprop")

    page.reload()
    wait_for_app(page)
    until(page, lambda: "反向传播" in _heading(page), "Chinese after a reload")

    _switch_to(page, "English")
    until(page, lambda: "Backpropagation" in _heading(page), "the page in English again")
    until(page, lambda: "lang=en" in page.url, "English in the URL")


def test_a_browser_that_prefers_chinese_starts_in_chinese(new_tab, app_server):
    tab = new_tab(locale="zh-CN", extra_http_headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    goto(tab, app_server, "faq")
    until(tab, lambda: "常见问题" in _heading(tab), "the FAQ in Chinese")
    english = new_tab(locale="en-US", extra_http_headers={"Accept-Language": "en-US,en;q=0.9"})
    goto(english, app_server, "faq")
    until(english, lambda: "Frequently asked questions" in _heading(english), "the FAQ in English")


def _choice(box) -> str:
    """What a selectbox shows as chosen (the text sits in its input's value)."""
    return box.locator("input").first.input_value()


def test_choices_already_shown_change_language_and_unsubmitted_form_edits_are_kept(page, app_server):
    """A selectbox keeps the text its format_func gave until its value is set again (streamlit#13788): after
    the switch the Data page's dataset choice reads in Chinese. In the Train form a choice changed but not yet
    submitted survives the switch (its value is not written back)."""
    goto(page, app_server, "data")
    picker = page.locator('[data-testid="stSelectbox"]').first
    until(page, lambda: "Handwritten digits" in _choice(picker), "the dataset choice in English")
    _switch_to(page, "简体中文")
    until(page, lambda: "手写数字" in _choice(page.locator('[data-testid="stSelectbox"]').first),
          "the dataset choice in Chinese")

    goto(page, app_server, "train?lang=zh")
    schedule = page.locator('[data-testid="stForm"] [data-testid="stSelectbox"]').nth(1)
    until(page, lambda: _choice(schedule) == "恒定", "the schedule in Chinese")
    schedule.click()
    page.get_by_role("option", name="余弦衰减").click()
    _switch_to(page, "English")
    until(page, lambda: "Train" in _heading(page), "the Train page in English")
    wait_for_app(page)
    assert _choice(schedule) in ("余弦衰减", "cosine decay")  # the unsubmitted choice is still there
