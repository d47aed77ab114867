"""Steps several browser tests take the way a person does: the first-run account, adding a
lab device with the wizard, and taking this server's key off the device afterwards."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
ADMIN_USER = "homeowner"
ADMIN_PASSWORD = "Correct-Horse-Battery-7"


class Visit:
    """One browser page for a test: every host it asks, every page it was shown (to look
    for secrets afterwards), and screenshots named `<prefix><name>.png` in ARTIFACTS (the
    old ones of the prefix removed first)."""

    def __init__(self, chromium, prefix: str):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for old in ARTIFACTS.glob(f"{prefix}*.png"):
            old.unlink()
        self.prefix = prefix
        self.context = chromium.new_context(viewport={"width": 1200, "height": 900})
        self.page = self.context.new_page()
        self.page.set_default_timeout(30_000)
        self.hosts: set[str] = set()
        self.bodies: list[str] = []
        self.page.on("request", lambda request: self.hosts.add(urlparse(request.url).netloc))

    def shot(self, name: str) -> None:
        self.bodies.append(self.page.content())
        self.page.screenshot(path=str(ARTIFACTS / f"{self.prefix}{name}.png"), full_page=True)

    def close(self) -> None:
        self.context.close()

    def assert_private(self, server: str, *secrets: str) -> None:
        """No page showed a secret, and the browser talked to our server only."""
        for body in self.bodies:
            for secret in secrets:
                assert secret not in body
        assert self.hosts == {urlparse(server).netloc}, self.hosts


def sign_up_and_add_device(page, server: str, lab_device, name: str) -> None:
    """A fresh install: the first-run account, then the add-device wizard with `lab_device`
    (test connection, add); ends on the device's ready page. `server` is the `server`
    fixture's URL, which knows the one-time setup link."""
    page.goto(server.setup_link())
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
