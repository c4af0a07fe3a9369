"""Browser: t-SNE -> PCA -> t-SNE on the Data page, in one tab and then for a second visitor.

The second t-SNE once raised CacheReplayClosureError (the cached projection drew into a progress bar made
outside it), and the bar sat at 25 % for the whole run. Now the bar follows scikit-learn's iterations with
the elapsed time, and every later showing comes from the server-wide memo: no exception, no console error.
"""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import goto, screenshot, wait_for_app

pytestmark = pytest.mark.e2e


def _watch_console(page) -> list[str]:
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    return problems


def _open_projection_tab(page, app_server) -> None:
    goto(page, app_server)  # home first: it sets up the navigation
    page.locator('[data-testid="stSidebarNavLink"]', has_text="Explore data").click()
    wait_for_app(page)
    page.get_by_role("tab", name="2-D projection").click()
    page.get_by_text("PCA: the two components").wait_for()


def _show(page, method: str) -> None:
    page.locator('[data-testid="stButtonGroup"]').get_by_role("radio", name=method, exact=True).click()
    caption = "t-SNE (perplexity" if method == "t-SNE" else "PCA: the two components"
    page.get_by_text(caption).wait_for(timeout=120_000)
    wait_for_app(page)
    page.locator(".gtitle", has_text=f"{method} of digits").wait_for()
    assert page.locator('[data-testid="stException"]').count() == 0, method


def test_tsne_pca_tsne_with_real_progress_then_a_second_visitor(page, new_tab, app_server):
    problems = _watch_console(page)
    _open_projection_tab(page, app_server)

    page.locator('[data-testid="stButtonGroup"]').get_by_role("radio", name="t-SNE", exact=True).click()
    progress = page.locator('[data-testid="stProgress"]')
    # the bar names the iteration it has reached and the seconds spent, and moves while t-SNE runs
    progress.get_by_text(re.compile(r"iteration \d+ of 500 · \d+ s")).wait_for(timeout=60_000)
    first = progress.inner_text()
    screenshot(page, "data-tsne-progress")
    page.wait_for_function(
        "t => { const p = document.querySelector('[data-testid=\"stProgress\"]');"
        " return !p || p.innerText !== t; }", arg=first, timeout=60_000)
    _show(page, "t-SNE")
    screenshot(page, "data-tsne")
    _show(page, "PCA")
    _show(page, "t-SNE")  # the second showing: CacheReplayClosureError before the fix
    _show(page, "PCA")
    _show(page, "t-SNE")

    other = new_tab()  # another visitor
    other_problems = _watch_console(other)
    _open_projection_tab(other, app_server)
    for method in ["t-SNE", "PCA", "t-SNE"]:
        _show(other, method)
    assert other.locator('[data-testid="stProgress"]').count() == 0  # served from memory, no recompute
    screenshot(other, "data-tsne-second-visitor")
    assert problems == [] and other_problems == [], problems + other_problems
