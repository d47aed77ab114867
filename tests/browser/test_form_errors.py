"""The deploy wizard shows its own errors (issue 14, item 1), in a real browser on the lab.

Apps -> Uptime Kuma -> Deploy -> Advanced -> port 22 -> Deploy: the server answers 409/422
with the form and the message; htmx must swap it in (app.js `responseHandling`), so the
message appears under the "Web port" box, in the box's own words. The same for the copy
name "Family Vault!" under "Name of this copy". Nothing is deployed.

Screenshots: test-artifacts/browser/form-errors-*.png.
"""

from __future__ import annotations

import pytest

from tests.browser.steps import ADMIN_PASSWORD, Visit, sign_up_and_add_device, take_our_key_off
from tests.browser.test_first_run import chromium, server  # noqa: F401 - fixtures

pytestmark = [pytest.mark.browser, pytest.mark.lab]

DEVICE = "lab-server-1"


def test_the_wizard_shows_a_taken_port_and_a_bad_copy_name_at_their_boxes(
    server,  # noqa: F811
    chromium,  # noqa: F811
    lab,
    tmp_path,
):
    lab_device = lab.device(DEVICE)
    visit = Visit(chromium, "form-errors-")
    page, shot = visit.page, visit.shot
    try:
        sign_up_and_add_device(page, server, lab_device, DEVICE)
        page.goto(server + "/apps/uptime-kuma/deploy/")
        page.get_by_text(f"Recommended: {DEVICE}").wait_for(timeout=60_000)
        page.get_by_text("Advanced", exact=True).click()
        assert page.locator("label[for=id_port_web]").inner_text() == "Web port"

        # 1. port 22: sshd has it
        page.fill("#id_port_web", "22")
        page.get_by_role("button", name="Deploy Uptime Kuma").click()
        errors = page.locator("#port_web-errors")
        errors.get_by_text("already in use").wait_for(timeout=60_000)
        text = errors.inner_text()
        assert text.startswith("Web port: port 22/tcp"), text
        assert DEVICE in text and "config.ports" not in text, text
        assert errors.is_visible()  # "Advanced" is open again after the swap
        assert page.url == server + "/apps/uptime-kuma/deploy/"
        shot("01-port-22")

        # 2. a copy name with a capital, a space and a "!"
        page.fill("#id_port_web", "3001")
        page.fill("#id_instance", "Family Vault!")
        page.get_by_role("button", name="Deploy Uptime Kuma").click()
        errors = page.locator("#instance-errors")
        errors.get_by_text("lowercase letters").wait_for(timeout=60_000)
        text = errors.inner_text()
        assert text.startswith("Name of this copy: use 1-31 lowercase letters"), text
        assert errors.is_visible()
        assert page.locator("#port_web-errors").inner_text().strip() == ""
        assert page.url == server + "/apps/uptime-kuma/deploy/"
        shot("02-copy-name")
    finally:
        visit.close()
        take_our_key_off(lab, DEVICE, tmp_path / "data")
    visit.assert_private(server, lab_device.password, ADMIN_PASSWORD)
