"""Issue 14, item 18 (the rest): removing a shared server asks first; a wrong password gets
only the hints that fit; the wizard's step marker does not tick "Find your device" for an
address where nothing answered; one "Add device" button on the add page.

The device side is real: a paramiko SSH server on 127.0.0.1 that refuses every login, and
a port on 127.0.0.1 where nothing listens.
"""

from __future__ import annotations

import re
import socket
import threading

import paramiko
import pytest
from django.urls import reverse

from devices import services
from devices.models import Device
from devices.status import help_for_status, status_help
from homelab.core.models import Job
from pooling.models import PooledDatabase, SharedInstance

pytestmark = pytest.mark.django_db

REINSTALLED = "reinstalled"


class _RefuseEveryLogin(paramiko.ServerInterface):
    def get_allowed_auths(self, username: str) -> str:
        return "password,publickey"

    def check_auth_password(self, username: str, password: str) -> int:
        return paramiko.AUTH_FAILED

    def check_auth_publickey(self, username: str, key) -> int:
        return paramiko.AUTH_FAILED


class RefusingSSHServer:
    """A real SSH server on 127.0.0.1 that answers the handshake and refuses every login."""

    def __init__(self) -> None:
        self.host_key = paramiko.Ed25519Key.from_private_key(_ed25519_private_key())
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.stopping = threading.Event()
        self.transports: list[paramiko.Transport] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            transport = paramiko.Transport(conn)
            transport.add_server_key(self.host_key)
            self.transports.append(transport)
            try:
                transport.start_server(server=_RefuseEveryLogin())
            except (paramiko.SSHException, EOFError, OSError):
                transport.close()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=2)
        for transport in self.transports:
            transport.close()
        self.listener.close()


def _ed25519_private_key():
    import io

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    return io.StringIO(pem.decode())


@pytest.fixture
def refusing_server(settings):
    settings.SSH_CONNECT_TIMEOUT_SECONDS = 3
    server = RefusingSSHServer()
    yield server
    server.stop()


@pytest.fixture
def closed_port() -> int:
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there any more: connecting is refused at once
    return port


@pytest.fixture
def signed_in(client, cast_admin):
    client.force_login(cast_admin.user)
    return client


def _wizard(**overrides) -> dict:
    data = {
        "name": "living-room-pi",
        "address": "127.0.0.1",
        "port": "22",
        "username": "pi",
        "password": "the-wrong-password",
        "private_key": "",
        "device_type": "pi",
        "location": "",
        "action": "test",
    }
    data.update(overrides)
    return data


def _step_classes(html: str) -> dict[str, str]:
    marker = re.search(r'<ol class="steps" id="wizard-steps".*?</ol>', html, re.S).group(0)
    return {
        label: classes
        for classes, label in re.findall(r'<li class="([^"]*)"[^>]*>([^<]+)</li>', marker)
    }


# --- Wrong password: only the hints that fit ---------------------------------------------


def test_a_wrong_password_gets_password_hints_and_no_reinstall_tips(refusing_server):
    check = services.device_test_connection(
        address="127.0.0.1", port=refusing_server.port, username="pi", password="wrong"
    )
    login = next(step for step in check.steps if step.key == "login")
    assert not login.ok
    fixes = " ".join(login.fixes)
    assert "Check the password" in fixes and "currently: pi" in fixes
    assert REINSTALLED not in fixes
    assert "PubkeyAuthentication" not in fixes  # no key was tried


def test_the_wizard_page_shows_no_reinstall_tip_for_a_wrong_password(refusing_server, signed_in):
    html = signed_in.post(
        reverse("device_add"), _wizard(port=str(refusing_server.port))
    ).content.decode()
    assert "Check the password" in html
    assert REINSTALLED not in html.split('id="check-results"')[1].split("</form>")[0]
    # the device answered: "Find your device" is done, "Test connection" is where we are
    steps = _step_classes(html)
    assert steps["Find your device"] == "done"
    assert steps["Test connection"] == "current"


def test_a_refused_key_gets_key_hints_and_a_saved_device_keeps_the_reinstall_tip():
    key = help_for_status(
        "auth_failed", address="10.0.0.2", port=22, username="pi", credential="key"
    )
    assert any("BEGIN and END" in fix for fix in key["fixes"])
    assert not any(REINSTALLED in fix for fix in key["fixes"])
    no_passwords = help_for_status(
        "auth_failed",
        address="10.0.0.2",
        port=22,
        username="pi",
        credential="password",
        reason="method_not_allowed",
    )
    assert any("paste a private key" in fix for fix in no_passwords["fixes"])
    saved = Device(name="pi", address="10.0.0.2", username="pi", status="auth_failed")
    assert any(REINSTALLED in fix for fix in status_help(saved)["fixes"])


# --- The step marker ---------------------------------------------------------------------


@pytest.mark.parametrize("htmx", [False, True])
def test_an_address_where_nothing_answers_does_not_tick_find_your_device(
    signed_in, closed_port, htmx
):
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    html = signed_in.post(
        reverse("device_add"), _wizard(port=str(closed_port)), **headers
    ).content.decode()
    assert "refused the connection" in html
    steps = _step_classes(html)
    assert steps["Find your device"] == "current"
    assert steps["Test connection"] == ""


def test_add_device_appears_once_on_the_add_page(signed_in):
    html = signed_in.get(reverse("device_add")).content.decode()
    assert len(re.findall(r">\s*Add (?:this )?device\s*<", html)) == 1  # the navigation's
    assert 'value="save"' not in html


# --- Removing a shared server asks first -------------------------------------------------


@pytest.fixture
def unused_server():
    device = Device.objects.create(
        name="lab-server-2",
        address="10.0.0.2",
        username="root",
        private_key="x",
        public_key="y",
        status="online",
    )
    return SharedInstance.objects.create(
        device=device,
        engine="postgres",
        version="16",
        project="hl-shared-postgres",
        admin_password="secret",
        status="running",
    )


def test_remove_this_server_asks_first_and_says_what_goes(signed_in, unused_server):
    url = reverse("shared_instance_remove", args=[unused_server.pk])
    index = signed_in.get(reverse("pooling_index")).content.decode()
    assert f'href="{url}"' in index
    assert f'action="{url}"' not in index  # no form that removes at one press

    page = signed_in.get(url).content.decode()
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))
    assert "Remove the shared PostgreSQL on lab-server-2?" in text
    assert "No app uses this server now." in text
    assert "deletes the data left in it" in text
    assert "Yes, remove this server and its data" in text
    assert not Job.objects.exists()

    response = signed_in.post(url)
    assert response.status_code == 302
    job = Job.objects.get()
    assert response["Location"] == reverse("job_detail", args=[job.pk])
    assert job.kind == "pool.remove"


def test_the_confirm_page_of_a_server_in_use_offers_no_removal(signed_in, unused_server):
    PooledDatabase.objects.create(
        instance=unused_server,
        project="hl-nextcloud-default",
        app_name="Nextcloud",
        app_instance="default",
        database_name="nextcloud",
        role_name="nextcloud",
    )
    page = signed_in.get(
        reverse("shared_instance_remove", args=[unused_server.pk])
    ).content.decode()
    assert "1 app still uses this server, so it cannot be removed." in page
    assert "Yes, remove" not in page


def test_a_login_that_worked_but_could_not_install_our_key_says_so():
    words = help_for_status(
        "auth_failed",
        address="10.0.0.2",
        port=22,
        username="pi",
        credential="password",
        reason="install_failed",
    )
    text = " ".join(words["fixes"])
    assert "owns its home folder" in text and "Check the password" not in text
