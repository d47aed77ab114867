"""The product on a phone, 390 px wide (issue 14, item 19); no lab needed.

1. `manage.py serve` on 127.0.0.1 with a fresh data directory; the first-run account.
2. A device row and three apps in the database (a `manage.py shell` script; the device
   points at a closed loopback port, so no real device is needed).
3. At 390 x 844: the navigation is one "Menu" button that opens and closes it, and every
   action of every app on My apps lies inside the screen's width.

Screenshots: test-artifacts/browser/phone-*.png.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tests.browser.steps import ADMIN_PASSWORD, ADMIN_USER, ROOT, Visit
from tests.browser.test_first_run import chromium, server  # noqa: F401 - fixtures
from tests.served import served_env

pytestmark = [pytest.mark.browser]

PHONE = {"width": 390, "height": 844}

ROWS = textwrap.dedent(
    """
    from devices.models import Device
    from marketplace.models import Deployment
    device = Device.objects.create(
        name="living-room-pi", address="127.0.0.1", port=9, username="root",
        private_key="not-a-real-key", public_key="ssh-ed25519 AAAA", status="online",
    )
    for slug, name, status in [("vaultwarden", "Vaultwarden", "running"),
                               ("nextcloud", "Nextcloud", "running"),
                               ("paperless-ngx", "Paperless-ngx", "stopped")]:
        Deployment.objects.create(
            slug=slug, app_name=name, category="productivity", device=device,
            project=f"hl-{slug}-default", status=status,
            url="http://living-room-pi.home.arpa:8080/a-long-address/",
        )
    """
)


def _inside(box, width: int) -> bool:
    return box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5


def test_a_phone_gets_a_compact_menu_and_every_app_action(server, chromium, tmp_path):  # noqa: F811
    visit = Visit(chromium, "phone-")
    visit.context.close()
    visit.context = chromium.new_context(viewport=PHONE, device_scale_factor=1)
    visit.page = page = visit.context.new_page()
    page.set_default_timeout(30_000)
    shot = visit.shot
    try:
        page.goto(server.setup_link())
        page.fill("#id_username", ADMIN_USER)
        page.fill("#id_password1", ADMIN_PASSWORD)
        page.fill("#id_password2", ADMIN_PASSWORD)
        page.get_by_role("button", name="Create my account").click()
        page.wait_for_url(server + "/devices/add/")
        subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", ROWS],
            cwd=ROOT,
            env=served_env(tmp_path / "data"),
            check=True,
            capture_output=True,
        )

        # 1. The navigation is one "Menu" button: the links are hidden until it is pressed.
        page.goto(server + "/deployments/")
        menu = page.get_by_role("button", name="Menu")
        assert menu.is_visible()
        assert menu.get_attribute("aria-expanded") == "false"
        my_apps_link = page.locator("#main-nav").get_by_role("link", name="My apps")
        assert not my_apps_link.is_visible()
        header = page.locator(".site-header").bounding_box()
        assert header["height"] < 80, header  # one line, not four
        shot("01-my-apps")

        # 2. Every action of every app is inside the screen, none cut off or scrolled away.
        rows = page.locator("tr[data-deployment-id]")
        assert rows.count() == 3
        actions = page.locator(".row-actions").locator("button, a")
        assert actions.count() >= 3 * 3
        for index in range(actions.count()):
            action = actions.nth(index)
            assert action.is_visible(), action.inner_text()
            assert _inside(action.bounding_box(), PHONE["width"]), (
                action.inner_text(),
                action.bounding_box(),
            )
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the page scrolls sideways: {width} px"

        # 3. The menu opens in place, its links inside the screen, and closes again.
        menu.click()
        assert menu.get_attribute("aria-expanded") == "true"
        assert my_apps_link.is_visible()
        assert _inside(my_apps_link.bounding_box(), PHONE["width"])
        shot("02-menu-open")
        menu.click()
        assert not my_apps_link.is_visible()

        # 4. The dashboard and the devices list fit the width too.
        for path, name in [("/", "03-dashboard"), ("/devices/", "04-devices")]:
            page.goto(server + path)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], f"{path} scrolls sideways: {width} px"
            shot(name)
    finally:
        visit.close()
