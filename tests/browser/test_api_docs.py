"""The API docs in a real browser with no internet (issue 14, item 2).

`manage.py serve` on 127.0.0.1 with a fresh data directory (no lab needed); the browser
refuses every request that is not to our server, as on a home network without internet,
and the docs page must still list the API's endpoints. Screenshot:
test-artifacts/browser/api-docs-01-offline.png.
"""

from __future__ import annotations

from urllib.parse import urlparse

import pytest

from tests.browser.steps import ADMIN_PASSWORD, ADMIN_USER, Visit
from tests.browser.test_first_run import chromium, server  # noqa: F401 - fixtures

pytestmark = [pytest.mark.browser]


def test_the_api_docs_list_the_endpoints_without_internet(server, chromium):  # noqa: F811
    visit = Visit(chromium, "api-docs-")
    page, shot = visit.page, visit.shot
    ours = urlparse(server).netloc
    refused: list[str] = []

    def offline(route):
        if urlparse(route.request.url).netloc == ours:
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    page.context.route("**/*", offline)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(server.setup_link())
        page.fill("#id_username", ADMIN_USER)
        page.fill("#id_password1", ADMIN_PASSWORD)
        page.fill("#id_password2", ADMIN_PASSWORD)
        page.get_by_role("button", name="Create my account").click()
        page.wait_for_url(server + "/devices/add/")

        page.goto(server + "/api/v1/docs")
        page.locator(".opblock").first.wait_for(timeout=30_000)
        listed = page.locator("#swagger-ui").inner_text()
        assert "/api/v1/devices" in listed
        assert "/api/v1/system/health" in listed
        shot("01-offline")
        assert not errors, errors  # "SwaggerUIBundle is not defined" and the like
        assert not refused, f"the docs page asked for {refused}"
    finally:
        visit.close()
