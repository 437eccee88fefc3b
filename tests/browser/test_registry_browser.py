"""Real headless Chromium on the clinic metrics page: axe-core finds nothing critical or serious, at a desk and
on a 375 px phone, where the page is no wider than the phone (each table scrolls in its own box) and the
tables are reachable from the keyboard. Screenshots go to artifacts/screenshots/."""

import os

import pytest

from tests.browser.test_journeys_browser import DESKTOP, PHONE, SHOTS, browser, sign_in, ward_member  # noqa: F401
from tests.browser.test_ward_browser import axe_violations
from tests.registry.conftest import build_small_clinic

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_the_metrics_page_passes_axe_and_fits_a_phone(browser, live_server, viewport):
    ward_member("coordinator")
    build_small_clinic()
    base = live_server.url
    context = browser.new_context(
        viewport=DESKTOP if viewport == "desktop" else PHONE, locale="en-GB", timezone_id="Europe/Berlin", bypass_csp=True
    )  # axe is injected as an inline script
    page = context.new_page()
    sign_in(page, base, "cora")
    page.wait_for_url(f"{base}/dashboard/")
    page.get_by_role("link", name="Metrics").click()
    page.wait_for_url(f"{base}/registry/metrics/")
    assert page.get_by_role("heading", name="Clinic metrics", level=1).is_visible()
    assert page.get_by_role("table", name="Vein-to-vein days by indication").is_visible()
    assert [v for v in axe_violations(page) if v["impact"] in ("critical", "serious")] == []
    if viewport == "phone":
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.screenshot(path=str(SHOTS / f"registry-metrics-{viewport}.png"), full_page=True)
    page.get_by_role("region", name="Journeys per stage at each month's end").focus()
    assert page.evaluate("document.activeElement.getAttribute('role')") == "region"
    context.close()
