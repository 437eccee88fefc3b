"""Issue 12, finding 8: the vendored Swagger UI still works under the Content-Security-Policy, in Chromium,
and the browser reports no CSP violation on it or on a page of the product."""

import os
from pathlib import Path

import pytest

from tests.browser.test_journeys_browser import CHROMIUM, CHROMIUM_ARGS, SHOTS

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_swagger_ui_renders_under_the_csp(live_server):
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists()
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = chromium.new_page()
        violations = []
        page.on("console", lambda message: violations.append(message.text) if "Content Security Policy" in message.text else None)
        response = page.goto(f"{live_server.url}/api/docs/")
        assert "script-src 'self'" in response.headers["content-security-policy"]
        page.wait_for_selector("text=carclinic API", timeout=20000)
        page.wait_for_selector("text=/api/v1/steps/{step_id}/complete/", timeout=20000)
        page.screenshot(path=str(SHOTS / "api-docs.png"))
        page.goto(f"{live_server.url}/accounts/login/")
        page.wait_for_selector("input[name=username]")
        chromium.close()
    assert violations == []
