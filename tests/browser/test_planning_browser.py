"""Real headless Chromium on the calendar and the record-status grid: axe-core (vendored) finds nothing
critical or serious, at a desk and on a 375 px phone; the calendar's prev/next work from the keyboard; the
grid's cells are reachable with Tab. Screenshots go to artifacts/screenshots/ (and to PLANNING_SHOTS if set)."""

import os
import shutil
from pathlib import Path

import pytest

from tests.browser.test_journeys_browser import (  # noqa: F401 - browser and clinic are fixtures
    DESKTOP,
    PHONE,
    SHOTS,
    browser,
    clinic,
    sign_in,
)
from tests.browser.test_ward_browser import axe_violations

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def shot(page, name: str) -> None:
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if extra := os.environ.get("PLANNING_SHOTS"):
        Path(extra).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(extra) / path.name)


def _grave(violations):
    return [v for v in violations if v["impact"] in ("critical", "serious")]


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_calendar_and_grid_pass_axe_and_work_from_the_keyboard(browser, live_server, clinic, viewport):
    base = live_server.url
    context = browser.new_context(
        viewport=DESKTOP if viewport == "desktop" else PHONE, locale="en-GB", timezone_id="Europe/Berlin", bypass_csp=True
    )  # axe is injected as an inline script
    page = context.new_page()
    sign_in(page, base, "cora")
    page.wait_for_url(f"{base}/dashboard/")

    page.goto(f"{base}/planning/calendar/")
    assert page.get_by_role("heading", name="Calendar").is_visible()
    assert _grave(axe_violations(page)) == []
    if viewport == "phone":  # a list per day, and nothing wider than the phone (the grid scrolls in its own box)
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, f"planning-calendar-{viewport}")
    first_day = page.locator(".cal-date").first.inner_text()
    page.locator("a[rel=next]").focus()
    page.keyboard.press("Enter")
    page.wait_for_load_state()
    assert page.locator(".cal-date").first.inner_text() != first_day
    page.goto(f"{base}/planning/calendar/?view=month")
    assert _grave(axe_violations(page)) == []

    page.goto(f"{base}/planning/grid/")
    assert page.locator("table.status-grid").is_visible()
    assert _grave(axe_violations(page)) == []
    if viewport == "phone":
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, f"planning-grid-{viewport}")
    page.locator("table.status-grid td.cell a").first.focus()
    assert page.evaluate("document.activeElement.closest('td') !== null")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.closest('td.cell') !== null")
    context.close()
