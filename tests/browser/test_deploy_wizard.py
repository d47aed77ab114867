"""Deploying an app the way a person does, in a real browser against the real server.

1. `manage.py serve` with a fresh data directory; first-run account; the lab's
   lab-server-2 added with the add-device wizard.
2. Apps -> search -> Vaultwarden -> Deploy: "Analyzing your homelab…" turns into the
   recommended device with its score; under "Advanced" a free host port is chosen.
3. Deploy: the deployment page follows the worker over the WebSocket; the steps appear on
   the page without a reload, then "Vaultwarden is ready at …" with an Open button.
4. Day 2 from My apps: stop, start, logs (followed), "What I did"; then Remove ->
   "Delete my data".
5. Once more with the WebSocket dropped: the page falls back to polling and still ends
   ready; removed again, and our key comes off the lab device.

Screenshots: test-artifacts/browser/deploy-*.png.
"""

from __future__ import annotations

import re
import secrets as pysecrets
import urllib.request

import pytest

from tests.browser.steps import ADMIN_PASSWORD, Visit, sign_up_and_add_device, take_our_key_off
from tests.browser.test_first_run import chromium, server  # noqa: F401 - fixtures

pytestmark = [pytest.mark.browser, pytest.mark.lab]

DEVICE = "lab-server-2"


def test_deploy_an_app_with_the_wizard_and_watch_it_arrive(server, chromium, lab, tmp_path):  # noqa: F811
    from marketplace.recipes import load_catalog
    from tests.lab.images import build_and_push_recipe_images

    build_and_push_recipe_images(lab, load_catalog([]), verbose=False)
    lab_device = lab.device(DEVICE)
    visit = Visit(chromium, "deploy-")
    page, shot = visit.page, visit.shot
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    polls: list[str] = []  # htmx polling of a deployment page (the fallback)
    page.on(
        "request",
        lambda r: (
            polls.append(r.url)
            if r.headers.get("hx-request") and re.search(r"/deployments/\d+/$", r.url)
            else None
        ),
    )

    try:
        # 1. account and device
        sign_up_and_add_device(page, server, lab_device, DEVICE)

        # 2. the catalog, searched
        page.get_by_role("link", name="Apps", exact=True).click()
        page.wait_for_url(server + "/apps/")
        assert page.get_by_role("heading", name="Apps", exact=True).is_visible()
        shot("01-catalog")
        page.fill("#id_q", "password")
        page.locator("#app-cards .app-card").first.wait_for()
        page.wait_for_function("() => document.querySelectorAll('#app-cards .app-card').length === 1")
        assert "Vaultwarden" in page.locator("#app-cards").inner_text()
        shot("02-search")
        page.locator("#app-cards").get_by_role("link", name="Vaultwarden").click()
        page.wait_for_url(server + "/apps/vaultwarden/")
        assert page.get_by_text("Needs at least 128 MB of memory").is_visible()
        shot("03-app")

        # 3. the wizard
        page.get_by_role("link", name="Deploy", exact=True).first.click()
        page.wait_for_url(server + "/apps/vaultwarden/deploy/")
        page.get_by_text(f"Recommended: {DEVICE}").wait_for(timeout=60_000)
        option = page.locator(".device-option.recommended")
        assert DEVICE in option.inner_text() and "this app needs 128 MB" in option.inner_text()
        assert option.locator("input[type=radio]").is_checked()
        shot("04-recommendation")
        page.get_by_text("Advanced", exact=True).click()
        port = 20000 + pysecrets.randbelow(20000)
        page.fill("#id_port_web", str(port))
        instance = f"browser-{pysecrets.token_hex(3)}"  # other sessions share the lab device
        page.fill("#id_instance", instance)
        page.locator("#id_port_web").dispatch_event("change")
        page.locator("#compose-preview").get_by_text(f"{port}:80").wait_for()
        page.locator("#id_instance").dispatch_event("change")
        page.locator("#compose-preview").get_by_text(f"hl-vaultwarden-{instance}").first.wait_for()
        assert "••••••" in page.locator("#compose-preview").inner_text()
        shot("05-advanced")

        # 4. deploy and watch
        page.get_by_role("button", name="Deploy Vaultwarden").click()
        page.wait_for_url(re.compile(r".*/deployments/\d+/$"), timeout=60_000)
        deployment_url = page.url
        page.evaluate("window.__notReloaded = true")
        page.locator("#steps-list .progress-step").first.wait_for(timeout=60_000)
        shot("06-progress")
        page.locator(".outcome-ready").wait_for(timeout=240_000)
        assert page.evaluate("window.__notReloaded === true"), "the page reloaded itself"
        assert any("/ws/deployments/" in url for url in sockets), sockets
        assert polls == [], f"the page polled although the WebSocket worked: {polls}"
        ready = page.locator(".outcome-ready").inner_text()
        assert f"Vaultwarden is ready at http://{lab_device.address}:{port}" in ready, ready
        open_link = page.get_by_role("link", name="Open Vaultwarden")
        assert open_link.get_attribute("href") == f"http://{lab_device.address}:{port}"
        steps = page.locator("#steps-list").inner_text()
        for words in ("Checking requirements", "Starting the app", "Waiting until the app answers"):
            assert words in steps, steps
        shot("07-ready")
        with urllib.request.urlopen(
            f"http://{lab_device.address}:{port}/alive", timeout=10
        ) as answer:
            assert answer.status == 200

        # 5. My apps, then remove it with its data
        page.get_by_role("link", name="My apps", exact=True).first.click()
        page.wait_for_url(server + "/deployments/")
        row = page.locator("tr", has_text="Vaultwarden")
        assert DEVICE in row.inner_text() and "Running" in row.inner_text()
        shot("08-my-apps")

        # day 2: stop, start, logs (followed), "What I did"
        # each runs as a job: the button leads to the job's page, which follows it live
        row.get_by_role("button", name="Stop").click()
        job_succeeds(page, "Stopping Vaultwarden")
        page.goto(server + "/deployments/")
        assert "Stopped" in page.locator("tr", has_text="Vaultwarden").inner_text()
        page.locator("tr", has_text="Vaultwarden").get_by_role("button", name="Start").click()
        job_succeeds(page, "Starting Vaultwarden")
        page.goto(server + "/deployments/")
        row = page.locator("tr", has_text="Vaultwarden")
        assert "Running" in row.inner_text()
        row.get_by_role("link", name="Logs").click()
        page.get_by_role("heading", name="What Vaultwarden is saying").wait_for()
        page.get_by_role("link", name="Follow").click()
        page.locator("#logs[hx-trigger='every 2s']").wait_for()
        with page.expect_response(lambda r: "/logs/?follow=1" in r.url, timeout=10_000):
            pass
        shot("09-logs")
        page.goto(deployment_url)
        page.get_by_role("link", name="What I did").click()
        page.get_by_role("heading", name="What I did").wait_for()
        debug = page.locator("main").inner_text()
        assert "docker compose" in debug and "pre-flight checks" in debug and "••••••" in debug
        shot("10-what-i-did")

        page.get_by_role("link", name="My apps", exact=True).first.click()
        row = page.locator("tr", has_text="Vaultwarden")
        row.get_by_role("link", name="Remove").click()
        assert page.get_by_role("button", name="Keep my data").is_visible()
        shot("11-remove")
        page.get_by_role("button", name="Delete my data").click()
        job_succeeds(page, "Removing Vaultwarden")
        shot("12-removed")
        page.goto(deployment_url)
        assert "Removed" in page.locator("#deployment-status").inner_text()

        # 6. without the WebSocket (a proxy that drops it), the page polls instead
        page.route_web_socket(re.compile(r".*/ws/deployments/.*"), lambda ws: ws.close())
        page.goto(server + "/apps/vaultwarden/deploy/")
        page.get_by_text(f"Recommended: {DEVICE}").wait_for(timeout=60_000)
        page.get_by_text("Advanced", exact=True).click()
        page.fill("#id_port_web", str(port))
        page.fill("#id_instance", instance)
        page.get_by_role("button", name="Deploy Vaultwarden").click()
        page.wait_for_url(re.compile(r".*/deployments/\d+/$"), timeout=60_000)
        assert page.url != deployment_url
        page.locator(".outcome-ready").wait_for(timeout=240_000)
        assert polls, "the page did not fall back to polling"
        assert f"http://{lab_device.address}:{port}" in page.locator(".outcome-ready").inner_text()
        shot("13-ready-by-polling")
        page.get_by_role("link", name="Remove").click()
        page.get_by_role("button", name="Delete my data").click()
        job_succeeds(page, "Removing Vaultwarden")
    finally:
        visit.close()
        take_our_key_off(lab, DEVICE, tmp_path / "data")

    visit.assert_private(server, lab_device.password, ADMIN_PASSWORD)


def job_succeeds(page, saying: str, timeout: float = 180_000) -> None:
    """A day-2 button leads to its job's page (Activity), which shows the job live until
    it has succeeded."""
    page.wait_for_url(re.compile(r".*/activity/\d+/$"), timeout=60_000)
    assert page.get_by_text(saying).first.is_visible()
    page.locator("#job-status[data-status='succeeded']").wait_for(timeout=timeout)
