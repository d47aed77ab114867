"""A person's first ten minutes, in a real browser against the real server.

1. Start `manage.py serve` on 127.0.0.1 with a fresh data directory (a new install).
2. Drive Debian's Chromium with Playwright: first-run setup, the add-device wizard with the
   lab's "pi" device (test connection, checking requirements, add), the ready page, and a
   dashboard that shows the device's memory (about 2 GB) and refreshes by itself.
3. Remove the device again through its page, which also takes our key off the device.

Screenshots of every step go to test-artifacts/browser/first-run-*.png.
The browser and the server talk on 127.0.0.1 only; the only device is the lab's.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.browser.steps import ADMIN_PASSWORD, ADMIN_USER, ROOT, Visit

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
GiB = 1024**3

pytestmark = [pytest.mark.browser, pytest.mark.lab]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def chromium():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Debian's Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright for Python is not installed (pip install playwright)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class ServerURL(str):
    """The server's base URL; `.data_dir` is its data directory and `.setup_link()` the
    one-time first-run link, got the way a person re-prints it: `manage.py setup_link`."""

    data_dir: Path
    env: dict

    def setup_link(self) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", "setup_link"],
            cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=120, check=True,
        )
        path = result.stdout.strip()
        assert path.startswith("/setup/?token="), result.stdout + result.stderr
        return self + path


@pytest.fixture
def server(tmp_path):
    """`manage.py serve` on 127.0.0.1 with its own fresh data directory."""
    port = _free_port()
    env = os.environ.copy()
    env.update(HOMELAB_DATA_DIR=str(tmp_path / "data"), DJANGO_SETTINGS_MODULE="homelab.settings")
    for name in ("HOMELAB_DATABASE_URL", "HOMELAB_REDIS_URL"):
        env.pop(name, None)
    log_path = tmp_path / "serve.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            urllib.request.urlopen(f"{base}/api/v1/system/health", timeout=2)
            break
        except (urllib.error.URLError, ConnectionError, OSError):
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"the server did not start; its output:\n{log_path.read_text()}")
            time.sleep(0.5)
    url = ServerURL(base)
    url.data_dir, url.env = tmp_path / "data", env
    yield url
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _gib(text: str) -> float:
    number, unit = re.match(r"([\d.]+) (MB|GB|TB)", text).groups()
    return float(number) * {"MB": 1 / 1024, "GB": 1, "TB": 1024}[unit]


def test_first_run_to_a_dashboard_with_the_new_device(server, chromium, lab):
    pi = lab.device("lab-pi")
    visit = Visit(chromium, "first-run-")
    page, shot = visit.page, visit.shot

    # 1. A fresh install leads to the welcome page, whatever address is typed; without the
    # setup link it only says where to find that link.
    page.goto(server + "/")
    assert page.url == server + "/setup/"
    assert page.get_by_role("heading", name="Welcome to Homelab").is_visible()
    assert page.get_by_text("printed in its terminal").is_visible()
    assert page.locator("#id_password1").count() == 0
    page.goto(server.setup_link())
    assert page.get_by_role("heading", name="Welcome to Homelab").is_visible()
    shot("01-welcome")

    page.fill("#id_username", ADMIN_USER)
    page.fill("#id_password1", ADMIN_PASSWORD)
    page.fill("#id_password2", ADMIN_PASSWORD)
    page.get_by_role("button", name="Create my account").click()

    # 2. Signed in and straight into the wizard: find the device.
    page.wait_for_url(server + "/devices/add/")
    assert page.get_by_role("heading", name="Find your device").is_visible()
    page.fill("#id_name", "lab-pi")
    page.fill("#id_address", pi.address)
    page.fill("#id_port", str(pi.port))
    page.fill("#id_username", pi.username)
    page.fill("#id_password", pi.password)
    page.select_option("#id_device_type", "pi")
    page.fill("#id_location", "Test lab")
    shot("02-find-your-device")

    # 3. Test connection and check requirements, in place (the password stays in its field).
    page.get_by_role("button", name="Test connection", exact=True).click()
    results = page.locator("#check-results")
    results.get_by_text("Checking requirements").wait_for(timeout=60_000)
    assert "Connected!" in results.inner_text(), results.inner_text()
    assert results.locator(".checks li.bad").count() == 0
    assert page.input_value("#id_password") == pi.password
    shot("03-test-connection")

    # 4. Add it; the ready page shows what it brings.
    page.get_by_role("button", name="Add this device").click()
    page.wait_for_url(re.compile(r".*/devices/\d+/ready/$"), timeout=60_000)
    assert page.get_by_role("heading", name="Your device is ready!").is_visible()
    shot("04-ready")
    memory = page.locator(".summary-line strong").first.inner_text()
    assert abs(_gib(memory) - pi.memory_bytes / GiB) <= 0.05 * pi.memory_bytes / GiB, memory

    # 5. The dashboard shows the homelab with the device's RAM (about 2 GB) and updates itself.
    page.get_by_role("link", name="Go to dashboard").click()
    page.wait_for_url(server + "/")
    assert page.get_by_role("heading", name="Your Homelab").is_visible()
    card = page.locator(".device-card", has_text="lab-pi")
    ram_text = card.locator(".bar", has_text="Memory").locator(".bar-text").inner_text()
    total = re.search(r"of ([\d.]+ (?:MB|GB|TB)) used", ram_text).group(1)
    assert abs(_gib(total) - pi.memory_bytes / GiB) <= 0.05 * pi.memory_bytes / GiB, ram_text
    overview = page.locator(".overview").inner_text()
    assert "1 device online" in overview.replace("\n", " ")
    shot("05-dashboard")
    first_update = page.locator(".live-note").inner_text()
    page.wait_for_function(
        "text => document.querySelector('.live-note').innerText !== text",
        arg=first_update,
        timeout=15_000,
    )

    # 6. The device page, then remove it again (this takes our key off the lab device).
    card.get_by_role("link", name="lab-pi").click()
    page.wait_for_url(re.compile(r".*/devices/\d+/$"))
    assert page.get_by_role("button", name="Check now").is_visible()
    shot("06-device")
    page.get_by_role("link", name="Remove").click()
    shot("07-remove")
    page.get_by_role("button", name="Yes, remove lab-pi").click()
    page.wait_for_url(server + "/devices/")
    assert page.get_by_text("No devices yet").is_visible()

    visit.close()
    visit.assert_private(server, pi.password, ADMIN_PASSWORD)
