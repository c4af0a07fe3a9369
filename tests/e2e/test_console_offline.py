"""Every page, on a desktop and on a 390×844 phone, with no network: no console error, no uncaught page
error, no request to another host, and a browser tab title that names the page ("Train · Keras Lab").

The browser can reach only this server: every request to another host is recorded and refused, as it
would fail on a machine with no network (a font or icon fetched from the internet would show here, and
its failure would log a console error).

One console error is Streamlit's own and is allowed, only on a page opened by its address (a reload, a
bookmark): the frontend first looks for the server under the page's path, `/train/_stcore/health` and
`/train/_stcore/host-config`, gets 404 and then finds it at `/`. Navigating inside the app sends neither.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlparse

import pytest

from core.runs import RunStore
from tests.core.test_evaluation import write_run
from tests.e2e.conftest import DESKTOP, screenshot, wait_for_app

pytestmark = pytest.mark.e2e

# url path -> the title the page has in the navigation (and in the browser tab)
PAGES = {"data": "Explore data", "model": "Build a model", "train": "Train", "evaluate": "Evaluate",
         "runs": "Compare runs", "sweep": "Sweeps", "backprop": "Backpropagation", "faq": "FAQ"}
PHONE = {"width": 390, "height": 844}
_PROBE = re.compile(r"/(" + "|".join(PAGES) + r")/_stcore/(health|host-config)$")


@dataclass
class Watch:
    """What one tab did that it should not have: console errors, page errors, requests elsewhere."""

    host: str
    errors: list[str] = field(default_factory=list)
    elsewhere: list[str] = field(default_factory=list)
    direct_load: bool = False  # the page was opened by its address: Streamlit's path probe may 404

    def console(self, msg) -> None:
        if msg.type != "error":
            return
        where = (msg.location or {}).get("url", "")
        if self.direct_load and "404" in msg.text and _PROBE.search(urlparse(where).path):
            return
        self.errors.append(f"{msg.text} ({where})")

    def route(self, route) -> None:
        url = urlparse(route.request.url)
        if url.scheme in ("data", "blob") or url.hostname == self.host:
            route.continue_()
        else:  # no network: whatever would leave this machine fails
            self.elsewhere.append(route.request.url)
            route.abort("internetdisconnected")


def _open(new_tab, base_url: str, viewport: dict, phone: bool):
    watch = Watch(urlparse(base_url).hostname)
    page = new_tab(timeout_ms=60_000, viewport=viewport, is_mobile=phone, has_touch=phone,
                   device_scale_factor=2 if phone else 1)
    page.route("**/*", watch.route)
    page.on("console", watch.console)
    page.on("pageerror", lambda exc: watch.errors.append(f"page error: {exc}"))
    return page, watch


def _settle(page) -> None:
    wait_for_app(page)
    page.wait_for_timeout(800)  # fonts, icons and charts the render asked for


def _check(page, watch: Watch, title: str, where: str) -> None:
    expected = "Keras Lab" if title == "Home" else f"{title} · Keras Lab"
    assert page.title() == expected, f"{where}: tab title {page.title()!r}, expected {expected!r}"
    assert page.locator('[data-testid="stException"]').count() == 0, f"{where}: an exception is shown"
    assert not watch.errors, f"{where}: console errors {watch.errors}"
    assert not watch.elsewhere, f"{where}: requests to another host {sorted(set(watch.elsewhere))}"


@pytest.fixture(scope="module")
def with_a_run(e2e_runs):
    """A finished run, so that Evaluate, Compare runs and Backpropagation draw their charts and tables."""
    return write_run(RunStore(e2e_runs), "digits", epochs=4)


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_every_page_opened_by_its_address_is_clean_offline(new_tab, app_server, with_a_run, device):
    phone = device == "phone"
    page, watch = _open(new_tab, app_server, PHONE if phone else DESKTOP, phone)
    for path, title in {"": "Home", **PAGES}.items():
        watch.direct_load = True
        page.goto(f"{app_server}/{path}")
        _settle(page)
        _check(page, watch, title, f"{device} /{path}")
    screenshot(page, f"console-offline-direct-{device}")


def test_every_page_reached_through_the_sidebar_is_clean_offline(new_tab, app_server, with_a_run):
    page, watch = _open(new_tab, app_server, DESKTOP, phone=False)
    page.goto(app_server)
    _settle(page)
    _check(page, watch, "Home", "desktop home")
    nav = page.get_by_test_id("stSidebarNav")
    sections = [t.strip() for t in nav.get_by_test_id("stNavSectionHeader").all_inner_texts()]
    assert sections == ["Experiment", "Learn"], sections  # no section holding one page of its own name
    for title in [*PAGES.values(), "Home"]:
        nav.get_by_test_id("stSidebarNavItems").get_by_role("link", name=title, exact=True).click()
        _settle(page)
        _check(page, watch, title, f"desktop sidebar → {title}")
    screenshot(page, "console-offline-sidebar")


def test_on_a_phone_the_home_cards_are_in_order_and_lead_to_every_page(new_tab, app_server, with_a_run):
    page, watch = _open(new_tab, app_server, PHONE, phone=True)
    page.goto(app_server)
    _settle(page)
    cards = page.get_by_test_id("stPageLink")
    cards.first.wait_for()
    tops = sorted((cards.nth(i).bounding_box()["y"], cards.nth(i).inner_text()) for i in range(cards.count()))
    numbers = [int(m.group(1)) for _, text in tops if (m := re.search(r"(\d)\. ", text))]
    assert numbers == list(range(1, len(PAGES) + 1)), tops  # top to bottom, as the phone stacks them
    for n, title in enumerate(PAGES.values(), 1):
        page.get_by_test_id("stPageLink").filter(has_text=f"{n}. {title}").click()
        _settle(page)
        _check(page, watch, title, f"phone home card → {title}")
        page.goto(app_server)  # back home (its address has no page path: nothing to probe)
        _settle(page)
    screenshot(page, "console-offline-phone-cards")
