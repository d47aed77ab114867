"""Steps several browser tests take the way a person does: the first-run account, adding a
lab device with the wizard, and taking this server's key off the device afterwards."""

from __future__ import annotations

import re
import sqlite3

from tests.browser.test_first_run import ADMIN_PASSWORD, ADMIN_USER


def sign_up_and_add_device(page, server: str, lab_device, name: str) -> None:
    """A fresh install: the first-run account, then the add-device wizard with `lab_device`
    (test connection, add); ends on the device's ready page."""
    page.goto(server + "/")
    page.fill("#id_username", ADMIN_USER)
    page.fill("#id_password1", ADMIN_PASSWORD)
    page.fill("#id_password2", ADMIN_PASSWORD)
    page.get_by_role("button", name="Create my account").click()
    page.wait_for_url(server + "/devices/add/")
    page.fill("#id_name", name)
    page.fill("#id_address", lab_device.address)
    page.fill("#id_port", str(lab_device.port))
    page.fill("#id_username", lab_device.username)
    page.fill("#id_password", lab_device.password)
    page.get_by_role("button", name="Test connection", exact=True).click()
    page.locator("#check-results").get_by_text("Checking requirements").wait_for(timeout=60_000)
    page.get_by_role("button", name="Add this device").click()
    page.wait_for_url(re.compile(r".*/devices/\d+/ready/$"), timeout=60_000)


def take_our_key_off(lab, device_name: str, data_dir) -> None:
    """Removed deployments' rows keep their device (history), so the device cannot be
    removed through its page; take the key this server installed off by hand."""
    try:
        with sqlite3.connect(data_dir / "homelab.sqlite3") as db:
            rows = db.execute("SELECT public_key FROM devices_device").fetchall()
    except sqlite3.Error:
        return
    for (key,) in rows:
        if not key:
            continue
        lab.exec(
            device_name,
            [
                "sh",
                "-c",
                'f=/root/.ssh/authorized_keys; grep -vF "$1" "$f" > "$f.new"; cat "$f.new" > "$f"; rm -f "$f.new"',
                "sh",
                key.split()[1],
            ],
        )
