"""On a phone: a reloaded Train page shows the watched run's own model and settings, "Use these settings"
copies them into the form, and Start answers right beside the button even with the page scrolled down."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from core.datasets import load_builtin
from core.runs import RunStore
from core.specs import preset
from tests.core.test_evaluation import write_run
from tests.e2e.conftest import screenshot, wait_for_app

pytestmark = pytest.mark.e2e

PHONE = {"width": 390, "height": 844}

_SCROLL_TO_BOTTOM = """() => {
  for (const el of [document.scrollingElement, ...document.querySelectorAll('*')]) {
    if (el && el.scrollHeight > el.clientHeight + 1 && getComputedStyle(el).overflowY !== 'visible') {
      el.scrollTop = el.scrollHeight;
    }
  }
}"""


@pytest.fixture
def phone(new_tab, app_server):
    return new_tab(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)


def _in_viewport(locator) -> bool:
    box = locator.bounding_box()
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= PHONE["height"] \
        and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]


def _badge(page) -> str:
    heading = page.locator("h4", has_text="Run ")
    return heading.first.inner_text() if heading.count() else ""


def test_phone_reload_shows_the_runs_model_reuses_it_and_start_answers_beside_the_button(phone, app_server,
                                                                                        e2e_runs):
    store = RunStore(e2e_runs)
    digits = load_builtin("digits")
    run_id = write_run(store, "digits", epochs=6, training={
        "optimizer": "sgd", "momentum": 0.85, "learning_rate": 0.02, "batch_size": 64, "schedule": "cosine",
        "seed": 7})
    store.update_config(run_id, model=preset("Stronger CNN", digits).to_dict(), label="Stronger CNN on digits")

    # a reload on ?run=<id>: a fresh session, whose own model would be the default Small CNN
    phone.goto(f"{app_server}/train?run={run_id}")
    wait_for_app(phone)
    panel = phone.get_by_test_id("stVerticalBlock").filter(has=phone.locator("h4", has_text=run_id))
    assert panel.count() >= 1
    watched = panel.last.inner_text()  # the innermost block: the framed run panel
    assert "Model Stronger CNN (57,034 parameters) on digits" in watched, watched
    assert "SGD with momentum (momentum 0.85) · learning rate 0.02 · batch 64 · 6 epochs · cosine decay" in watched
    assert "Small CNN" not in watched  # the session's model is only in the next-start part below
    assert phone.get_by_text(re.compile(r"^Trains Small CNN")).count() == 1
    screenshot(phone, "train-phone-watched")

    phone.get_by_role("button", name="Use these settings").click()
    wait_for_app(phone)
    phone.get_by_text(re.compile(r"^Trains Stronger CNN")).wait_for()
    wait_for_app(phone)
    for label, value in (("Epochs", "6"), ("Batch size", "64"), ("Learning rate", "0.02"), ("Seed", "7")):
        expect(phone.get_by_label(label, exact=True)).to_have_value(value)
    expect(phone.get_by_role("combobox", name="Optimizer")).to_have_value("SGD with momentum")

    phone.get_by_label("Epochs", exact=True).fill("200")  # long enough to be stopped below, not to finish
    phone.evaluate(_SCROLL_TO_BOTTOM)
    start = phone.get_by_role("button", name="Start training")
    assert _in_viewport(start), start.bounding_box()  # scrolled down: the button is on screen, the top is not
    assert not _in_viewport(phone.locator("h1").first)
    start.click()

    feedback = phone.get_by_test_id("stAlert").filter(has_text=re.compile(r"(Started|Queued) at .*run \d{8}-"))
    feedback.wait_for(timeout=60_000)
    new_run = re.search(r"\d{8}-\d{6}-[0-9a-f]{6}", feedback.inner_text()).group(0)
    assert new_run != run_id and "(Stronger CNN on digits)" in feedback.inner_text()
    assert _in_viewport(feedback), feedback.bounding_box()  # beside the button, without scrolling
    toast = phone.get_by_test_id("stToast").filter(has_text=new_run)
    assert toast.count() == 1 and _in_viewport(toast)
    screenshot(phone, "train-phone-started")

    # the run panel above grows (progress, then charts); the confirmation stays where the person looks
    phone.locator("h4", has_text=new_run).filter(has_text="running").wait_for(timeout=120_000)
    assert _in_viewport(feedback), feedback.bounding_box()
    screenshot(phone, "train-phone-running")

    phone.get_by_role("button", name="Stop").click()
    phone.locator("h4", has_text=new_run).filter(has_text="stopped").wait_for(timeout=120_000)
    config = store.read_config(new_run)
    assert config["model"]["name"] == "Stronger CNN"
    assert (config["training"]["optimizer"], config["training"]["batch_size"], config["training"]["epochs"]) == (
        "sgd", 64, 200)
