"""In the browser: click the worst confusion cell and see those digits, compare two runs, refuse a bad model."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import confusion_matrix

from core.runs import RunStore
from tests.core.test_evaluation import write_run
from tests.e2e.conftest import goto, screenshot, wait_for_app

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server_runs(app_server, e2e_runs):
    """Two digits runs in the shared server's run store."""
    store = RunStore(e2e_runs)
    a = write_run(store, "digits", accuracy=0.6, seed=11, label="e2e before")
    b = write_run(store, "digits", accuracy=0.9, seed=12, label="e2e after")
    return store, a, b


def _choose_run(page, run_id):
    box = page.get_by_test_id("stSelectbox").filter(has_text="Run (completed or stopped)")
    box.click()
    page.keyboard.type(run_id)
    page.keyboard.press("Enter")
    wait_for_app(page)


def _click_cell(page, true, pred, k=10):
    """Click the cell's (invisible) marker; the two class boxes must then show it. The chart re-mounts
    after each rerun, so a click landing mid-render is retried (at most three times)."""
    boxes = page.get_by_test_id("stSelectbox")
    for _ in range(3):
        wait_for_app(page)
        page.locator('[data-testid="stPlotlyChart"] .scatterlayer path.point').nth(true * k + pred).click(force=True)
        wait_for_app(page)
        page.wait_for_timeout(500)
        wait_for_app(page)
        shown = tuple(boxes.filter(has_text=label).locator("input").input_value()
                      for label in ("True class", "Predicted class"))
        if shown == (str(true), str(pred)):
            return
    raise AssertionError(f"clicking cell ({true}, {pred}) did not select it; the boxes show {shown}")


def test_click_the_worst_cell_then_compare_runs(page, app_server, server_runs):
    store, run_a, run_b = server_runs
    goto(page, app_server, "evaluate")
    _choose_run(page, run_b)
    pred = store.read_predictions(run_b)
    cm = confusion_matrix(pred["y_true"], pred["probs"].argmax(1), labels=range(10))
    off = cm.copy()
    np.fill_diagonal(off, -1)
    t, p = (int(v) for v in np.unravel_index(off.argmax(), off.shape))
    other = (t, (p + 1) % 10 if (p + 1) % 10 != t else (p + 2) % 10)
    for cell in (other, (t, p)):  # click elsewhere first, so the worst cell is really chosen by a click
        _click_cell(page, *cell)
    page.get_by_text(f"True {t} → predicted {p}: {cm[t, p]} mistake").wait_for()  # right under the matrix
    images = page.locator('[data-testid="stImage"]')
    assert images.count() >= min(int(cm[t, p]), 24)
    screenshot(page, "evaluate-errors")

    goto(page, app_server, "runs")
    page.get_by_test_id("stMultiSelect").filter(has_text="Selected runs").click()
    for run_id in (run_b, run_a):
        page.keyboard.type(run_id)
        page.keyboard.press("Enter")
        wait_for_app(page)
    page.keyboard.press("Escape")
    page.get_by_role("tab", name="Class by class").click()
    for label, run_id in (("Run A (before)", run_a), ("Run B (after)", run_b)):
        page.get_by_test_id("stSelectbox").filter(has_text=label).click()
        page.keyboard.type(run_id)
        page.keyboard.press("Enter")
        wait_for_app(page)
    page.get_by_text("Run B got better on").first.wait_for()
    screenshot(page, "runs-compare")


def test_a_png_renamed_keras_is_refused_and_the_app_keeps_working(page, app_server, server_runs):
    goto(page, app_server, "evaluate")
    page.get_by_role("tab", name="Upload a .keras model").click()
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "PNG")
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
        files=[{"name": "model.keras", "mimeType": "application/octet-stream", "buffer": buf.getvalue()}])
    page.get_by_text("this is a PNG image renamed to .keras").wait_for()
    page.get_by_role("tab", name="A run of this app").click()
    assert page.get_by_text("Test accuracy").first.is_visible()
    screenshot(page, "evaluate-refused")
