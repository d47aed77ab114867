"""The server-rendered pages, through Django's test client.

Nothing here talks to a device except the tests marked `lab`, which use the real lab.
"""

from __future__ import annotations

import base64
import hashlib
import html as html_lib
import os
import re

import pytest
from django.urls import reverse

from devices import services
from devices.models import Device, DeviceStatus
from devices.services import DeviceError
from homelab.models import ApiToken

pytestmark = pytest.mark.django_db

PASSWORD = "sup3r-Secret-pw"
DEVICE_PASSWORD = "Device-Pa55word-Never-Shown"


@pytest.fixture
def owner(django_user_model):
    return django_user_model.objects.create_superuser("owner", password=PASSWORD)


@pytest.fixture
def signed_in(client, owner):
    client.force_login(owner)
    return client


def make_device(**fields) -> Device:
    values = {
        "name": "lab-pi",
        "address": "10.0.0.2",
        "port": 22,
        "username": "root",
        "device_type": "pi",
        "location": "Office",
        "status": DeviceStatus.ONLINE,
        "private_key": "not-a-real-key",
        "public_key": "ssh-ed25519 AAAA",
        "ram_total_bytes": 2 * 1024**3,
        "ram_used_bytes": 1024**3,
        "storage_total_bytes": 30 * 1024**3,
        "storage_used_bytes": 10 * 1024**3,
        "cpu_cores": 1,
        "cpu_usage_percent": 12.0,
    }
    values.update(fields)
    return Device.objects.create(**values)


def wizard_data(**overrides) -> dict:
    data = {
        "name": "living-room-pi",
        "address": "10.0.0.9",
        "port": "22",
        "username": "pi",
        "password": DEVICE_PASSWORD,
        "private_key": "",
        "device_type": "pi",
        "location": "Office",
    }
    data.update(overrides)
    return data


def field_errors(html: str, field: str) -> str:
    match = re.search(
        rf'id="err-{field}"[^>]*>(.*?)</div>\s*(?:</div>|<div class="field-errors"|$)',
        html,
        re.DOTALL,
    )
    return html_lib.unescape(match.group(1)) if match else ""


# --- First run -----------------------------------------------------------------------


def test_every_page_leads_to_setup_while_no_account_exists(client):
    for url in ["/", "/devices/", "/devices/add/", "/settings/tokens/", "/accounts/login/"]:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"] == reverse("first_run"), url


@pytest.fixture
def setup_url():
    """The one-time setup link `serve` prints (`manage.py setup_link`)."""
    from homelab.setup_token import setup_path

    return setup_path()


def test_setup_page_welcomes_a_new_person(client, setup_url):
    response = client.get(setup_url)
    assert response.status_code == 200
    assert "Welcome to Homelab" in response.text
    assert 'name="password2"' in response.text


def test_setup_creates_the_admin_signs_in_and_opens_the_wizard(client, django_user_model, setup_url):
    response = client.post(
        setup_url,
        {
            "username": "alice",
            "password1": PASSWORD,
            "password2": PASSWORD,
        },
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("device_add")
    user = django_user_model.objects.get(username="alice")
    assert user.is_superuser and user.is_staff
    follow = client.get(reverse("device_add"))
    assert follow.status_code == 200
    assert "Find your device" in follow.text
    assert PASSWORD not in follow.text


def test_setup_says_what_is_wrong_with_a_weak_or_mistyped_password(client, django_user_model, setup_url):
    response = client.post(
        setup_url,
        {
            "username": "alice",
            "password1": "12345678",
            "password2": "12345678",
        },
    )
    assert response.status_code == 200
    assert "too common" in response.text or "entirely numeric" in response.text
    response = client.post(
        setup_url,
        {
            "username": "alice",
            "password1": PASSWORD,
            "password2": PASSWORD + "x",
        },
    )
    assert "didn’t match" in response.text or "didn't match" in response.text  # noqa: RUF001
    assert not django_user_model.objects.exists()
    assert PASSWORD not in response.text


def test_setup_is_closed_once_an_account_exists(client, owner, django_user_model):
    response = client.get(reverse("first_run"))
    assert response.status_code == 302
    assert response["Location"] == reverse("login")
    response = client.post(
        reverse("first_run"),
        {
            "username": "mallory",
            "password1": PASSWORD,
            "password2": PASSWORD,
        },
    )
    assert response.status_code == 302
    assert not django_user_model.objects.filter(username="mallory").exists()


# --- Login required everywhere ------------------------------------------------------


def test_every_page_and_partial_needs_login(client, owner):
    device = make_device()
    get_urls = [
        reverse("dashboard"),
        reverse("device_list"),
        reverse("device_add"),
        reverse("device_detail", args=[device.pk]),
        reverse("device_ready", args=[device.pk]),
        reverse("device_edit", args=[device.pk]),
        reverse("device_remove", args=[device.pk]),
        reverse("api_tokens"),
    ]
    for url in get_urls:
        for headers in ({}, {"HTTP_HX_REQUEST": "true"}):
            response = client.get(url, **headers)
            assert response.status_code == 302, url
            assert response["Location"].startswith(reverse("login")), url
    post_urls = [
        reverse("device_add"),
        reverse("device_scan"),
        reverse("device_check", args=[device.pk]),
        reverse("device_trust_host_key", args=[device.pk]),
        reverse("device_edit", args=[device.pk]),
        reverse("device_remove", args=[device.pk]),
        reverse("api_tokens"),
    ]
    for url in post_urls:
        response = client.post(url, wizard_data())
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("login")), url
    assert Device.objects.filter(pk=device.pk).exists()


def test_login_page_signs_in_and_logout_is_a_post(client, owner):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert "Sign in" in response.text
    response = client.post(reverse("login"), {"username": "owner", "password": "wrong"})
    assert "don't match" in response.text
    response = client.post(reverse("login"), {"username": "owner", "password": PASSWORD})
    assert response.status_code == 302
    page = client.get(reverse("dashboard"))
    assert 'action="/accounts/logout/"' in page.text
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert client.get(reverse("dashboard")).status_code == 302


def test_nav_shows_admin_only_to_staff(client, owner, django_user_model):
    client.force_login(owner)
    assert 'href="/admin/"' in client.get(reverse("dashboard")).text
    person = django_user_model.objects.create_user("bob", password=PASSWORD)
    client.force_login(person)
    assert 'href="/admin/"' not in client.get(reverse("dashboard")).text


# --- Dashboard -----------------------------------------------------------------------


def test_empty_dashboard_leads_to_the_wizard(signed_in):
    response = signed_in.get(reverse("dashboard"))
    assert response.status_code == 200
    assert "Let's add your first device" in response.text
    assert reverse("device_add") in response.text


def test_dashboard_shows_the_homelab_as_one_system(signed_in):
    make_device()
    make_device(
        name="nas",
        address="10.0.0.3",
        ram_total_bytes=8 * 1024**3,
        ram_used_bytes=7.8 * 1024**3,
        device_type="nas",
    )
    make_device(name="old-laptop", address="10.0.0.4", status=DeviceStatus.OFFLINE)
    response = signed_in.get(reverse("dashboard"))
    html = response.text
    assert "Your Homelab" in html
    assert "Memory (RAM)" in html and "Storage" in html and "Processor (CPU)" in html
    assert "devices online" in html
    assert "by sharing databases" in html
    # Overloaded (nas) and unreachable (old-laptop) devices come first, highlighted red.
    position = {d.name: html.index(f'id="device-{d.pk}"') for d in Device.objects.all()}
    assert position["nas"] < position["lab-pi"]
    assert position["old-laptop"] < position["lab-pi"]
    assert re.search(rf'device-card red" id="device-{Device.objects.get(name="nas").pk}"', html)
    assert "Running out of memory" in html


def test_dashboard_htmx_request_gets_only_the_live_partial(signed_in):
    make_device()
    full = signed_in.get(reverse("dashboard"))
    assert "<html" in full.text
    assert 'hx-trigger="every 5s' in full.text
    partial = signed_in.get(reverse("dashboard"), HTTP_HX_REQUEST="true")
    assert partial.status_code == 200
    assert "<html" not in partial.text
    assert partial.text.lstrip().startswith('<div id="dashboard-live"')
    assert 'hx-trigger="every 5s' in partial.text
    assert "lab-pi" in partial.text


def test_pages_send_the_csrf_token_with_htmx_requests(signed_in):
    html = signed_in.get(reverse("dashboard")).text
    assert re.search(r'<body hx-headers=\'\{"X-CSRFToken": "[^"]+"\}\'>', html)


# --- Add-device wizard ---------------------------------------------------------------


def test_wizard_shows_plain_words_and_no_jargon(signed_in):
    html = signed_in.get(reverse("device_add")).text
    assert "Find your device" in html
    assert "Device login" in html
    assert "Advanced: use a key instead" in html
    assert "Scan my network" in html
    assert "SSH credentials" not in html and "pre-flight" not in html.lower()


def test_wizard_prefills_an_address_picked_from_a_scan(signed_in):
    html = signed_in.get(reverse("device_add"), {"address": "10.0.0.7", "port": "2222"}).text
    assert 'value="10.0.0.7"' in html
    assert 'value="2222"' in html


@pytest.mark.parametrize("htmx", [False, True])
def test_wizard_validation_errors_show_next_to_each_field(signed_in, htmx):
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    response = signed_in.post(
        reverse("device_add"),
        wizard_data(
            action="save",
            name="bad name!",
            address="10.0.0.9; rm -rf /",
            port="99999",
            username="Root User",
            password="",
        ),
        **headers,
    )
    assert response.status_code == 200
    html = response.text
    assert "letters, digits" in field_errors(html, "name")
    assert "IP address" in field_errors(html, "address")
    assert "65535" in field_errors(html, "port")
    assert "login name" in field_errors(html, "username")
    assert "password" in field_errors(html, "password")
    assert field_errors(html, "location") == ""
    assert not Device.objects.exists()
    if htmx:
        assert "<html" not in html
        assert 'hx-swap-oob="true"' in html
    else:
        assert "<html" in html


def test_wizard_needs_a_name_only_to_save(signed_in):
    response = signed_in.post(reverse("device_add"), wizard_data(action="save", name=""))
    assert "Give the device a name" in field_errors(response.text, "name")
    make_device(name="living-room-pi")
    response = signed_in.post(reverse("device_add"), wizard_data(action="save"))
    assert "already have a device called" in field_errors(response.text, "name")


def test_wizard_rejects_a_public_key_pasted_as_private_key(signed_in):
    response = signed_in.post(
        reverse("device_add"),
        wizard_data(
            password="",
            private_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA me@laptop",
        ),
    )
    assert "doesn't look like a private key" in field_errors(response.text, "private_key")
    assert "AAAAC3NzaC1lZDI1NTE5AAAA" not in response.text


@pytest.mark.parametrize("htmx", [False, True])
def test_wizard_never_writes_the_password_back_into_the_page(signed_in, htmx):
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    bodies = []
    for action in ("test", "save"):
        # Invalid on purpose: the answer comes straight from the form, no device contacted.
        bodies.append(
            signed_in.post(
                reverse("device_add"), wizard_data(action=action, username="Not Valid"), **headers
            ).text
        )
    key = (
        "-----BEGIN OPENSSH PRIVATE KEY-----\nSECRETKEYMATERIAL\n-----END OPENSSH PRIVATE KEY-----"
    )
    bodies.append(
        signed_in.post(
            reverse("device_add"),
            wizard_data(action="test", username="Not Valid", password="", private_key=key),
            **headers,
        ).text
    )
    for body in bodies:
        assert DEVICE_PASSWORD not in body
        assert "SECRETKEYMATERIAL" not in body
    # Everything else the person typed is kept (full page) or untouched (htmx).
    if not htmx:
        assert 'value="living-room-pi"' in bodies[0]
        assert 'value="10.0.0.9"' in bodies[0]
        assert "Please type it again" in bodies[0]


@pytest.mark.parametrize("htmx", [False, True])
def test_wizard_shows_a_device_error_next_to_its_field(signed_in, monkeypatch, htmx):
    """How a refused login from device_add is shown (the lab tests cause the real one)."""

    def refuse(**kwargs):
        raise DeviceError(
            "The device refused the login.",
            device_status=DeviceStatus.AUTH_FAILED,
            fixes=["Check the password."],
            field="password",
        )

    monkeypatch.setattr(services, "device_add", refuse)
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    response = signed_in.post(reverse("device_add"), wizard_data(action="save"), **headers)
    html = response.text
    assert "The device refused the login." in field_errors(html, "password")
    assert "Check the password." in html
    assert "Test connection again" in html and "Change address" in html
    assert DEVICE_PASSWORD not in html
    # The password field is asked again, empty.
    assert re.search(
        r'<input type="password" name="password"[^>]*id="id_password"', html
    ) or re.search(r'<input type="password"[^>]*name="password"', html)
    assert "Please type it again" in html
    assert not Device.objects.exists()


def test_wizard_save_success_goes_to_the_ready_page(signed_in, monkeypatch):
    def add(**kwargs):
        return make_device(name=kwargs["name"], address=kwargs["address"])

    monkeypatch.setattr(services, "device_add", add)
    response = signed_in.post(
        reverse("device_add"), wizard_data(action="save"), HTTP_HX_REQUEST="true"
    )
    device = Device.objects.get(name="living-room-pi")
    assert response["HX-Redirect"] == reverse("device_ready", args=[device.pk])
    response = signed_in.post(reverse("device_add"), wizard_data(action="save", name="second"))
    assert response.status_code == 302
    ready = signed_in.get(response["Location"])
    assert "Your device is ready!" in ready.text
    assert "2 GB" in ready.text
    assert "Add another device" in ready.text and "Go to dashboard" in ready.text


def test_scan_says_what_is_wrong_with_a_network(signed_in):
    response = signed_in.post(reverse("device_scan"), {"cidr": "my home"}, HTTP_HX_REQUEST="true")
    assert "isn't a network we understand" in html_lib.unescape(response.text)
    response = signed_in.post(reverse("device_scan"), {"cidr": "10.0.0.0/8"})
    assert "too big" in response.text
    assert "<html" in response.text


# --- Device pages ---------------------------------------------------------------------


def test_device_list_and_detail_show_the_device(signed_in):
    device = make_device()
    html = signed_in.get(reverse("device_list")).text
    assert "lab-pi" in html and "2 GB" in html
    html = signed_in.get(reverse("device_detail", args=[device.pk])).text
    assert "Check now" in html and "Edit" in html and "Remove" in html
    assert "Right now" in html and "The last 6 hours" in html


def test_detail_explains_a_status_and_its_fixes(signed_in):
    device = make_device(status=DeviceStatus.OFFLINE)
    html = html_lib.unescape(signed_in.get(reverse("device_detail", args=[device.pk])).text)
    assert "Can't connect to device" in html
    assert "powered on" in html


def test_changed_identity_shows_both_fingerprints_and_the_trust_button(signed_in):
    old, new = os.urandom(51), os.urandom(51)
    device = make_device(
        status=DeviceStatus.HOST_KEY_CHANGED,
        host_key=base64.b64encode(old).decode(),
        offered_host_key=base64.b64encode(new).decode(),
    )
    html = signed_in.get(reverse("device_detail", args=[device.pk])).text
    assert "This device's identity changed" in html_lib.unescape(html)
    for blob in (old, new):
        expected = "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
        assert expected in html
    assert "trust the new identity" in html
    assert reverse("device_trust_host_key", args=[device.pk]) in html


def test_edit_and_remove_pages_ask_first(signed_in):
    device = make_device()
    html = signed_in.get(reverse("device_edit", args=[device.pk])).text
    assert 'value="lab-pi"' in html
    assert "not-a-real-key" not in html
    response = signed_in.post(
        reverse("device_edit", args=[device.pk]),
        {
            "name": "bad name!",
            "address": device.address,
            "port": 22,
            "username": "root",
            "device_type": "pi",
            "location": "",
            "always_on": "on",
        },
    )
    assert "letters, digits" in response.text
    html = signed_in.get(reverse("device_remove", args=[device.pk])).text
    assert "Remove lab-pi?" in html
    assert Device.objects.filter(pk=device.pk).exists()


def test_missing_device_is_a_404(signed_in):
    assert signed_in.get(reverse("device_detail", args=[999])).status_code == 404


# --- API tokens ----------------------------------------------------------------------


def test_api_token_is_shown_once_listed_and_revocable(signed_in, owner, django_user_model):
    response = signed_in.post(reverse("api_tokens"), {"action": "create", "name": "backup script"})
    raw = re.search(r'id="new-token">([^<]+)<', response.text).group(1)
    token = ApiToken.objects.get(user=owner)
    assert raw.startswith(token.hint)
    assert response["Cache-Control"] == "no-store"
    listing = signed_in.get(reverse("api_tokens")).text
    assert raw not in listing
    assert token.hint in listing and "backup script" in listing

    other = django_user_model.objects.create_user("bob", password=PASSWORD)
    theirs = ApiToken.objects.create(user=other, token_hash="x" * 64, hint="hlo_bob")
    response = signed_in.post(reverse("api_tokens"), {"action": "revoke", "token_id": theirs.pk})
    assert response.status_code == 404
    assert ApiToken.objects.filter(pk=theirs.pk).exists()

    response = signed_in.post(reverse("api_tokens"), {"action": "revoke", "token_id": token.pk})
    assert response.status_code == 302
    assert not ApiToken.objects.filter(pk=token.pk).exists()


# --- With the real lab ----------------------------------------------------------------


@pytest.mark.lab
def test_wizard_adds_a_lab_device_without_ever_echoing_its_password(signed_in, lab):
    pi = lab.device("lab-pi")
    data = wizard_data(
        name="wizard-pi",
        address=pi.address,
        port=str(pi.port),
        username=pi.username,
        password=pi.password,
    )
    bodies = []
    tested = signed_in.post(
        reverse("device_add"), {**data, "action": "test"}, HTTP_HX_REQUEST="true"
    )
    bodies.append(tested.text)
    assert "Connected!" in tested.text, tested.text
    saved = signed_in.post(
        reverse("device_add"), {**data, "action": "save"}, HTTP_HX_REQUEST="true"
    )
    device = Device.objects.get(name="wizard-pi")
    assert saved["HX-Redirect"] == reverse("device_ready", args=[device.pk])
    for url in (
        saved["HX-Redirect"],
        reverse("dashboard"),
        reverse("device_detail", args=[device.pk]),
    ):
        bodies.append(signed_in.get(url).text)
    for body in bodies:
        assert pi.password not in body
    services.device_remove(device=device)


def test_too_many_wrong_passwords_pause_signing_in_with_plain_words(client, owner, settings):
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(3):
        response = client.post(reverse("login"), {"username": "owner", "password": "wrong"})
    response = client.post(reverse("login"), {"username": "owner", "password": PASSWORD})
    assert response.status_code == 429
    assert "Signing in is paused" in response.text
    assert "wait 15 minutes" in response.text


@pytest.mark.lab
def test_check_now_edit_and_remove_work_on_a_lab_device(signed_in, lab):
    pi = lab.device("lab-pi")
    device = services.device_add(
        name="pages-pi",
        address=pi.address,
        port=pi.port,
        username=pi.username,
        password=pi.password,
        device_type="pi",
    )
    try:
        response = signed_in.post(reverse("device_check", args=[device.pk]), follow=True)
        assert "answered just now and is working" in response.text
        assert "2 GB" in response.text

        response = signed_in.post(
            reverse("device_edit", args=[device.pk]),
            {
                "name": "pages-pi",
                "address": pi.address,
                "port": pi.port,
                "username": pi.username,
                "device_type": "pi",
                "location": "Lab shelf",
                "always_on": "on",
                "password": "",
                "private_key": "",
            },
            follow=True,
        )
        assert "Saved your changes" in response.text
        assert Device.objects.get(pk=device.pk).location == "Lab shelf"

        response = signed_in.post(reverse("device_remove", args=[device.pk]), follow=True)
        assert "was removed from your homelab" in response.text
        assert not Device.objects.filter(pk=device.pk).exists()
    finally:
        if Device.objects.filter(pk=device.pk).exists():
            services.device_remove(device=Device.objects.get(pk=device.pk))


@pytest.mark.django_db(transaction=True)
def test_dashboard_websocket_sends_the_live_partial_to_signed_in_people_only(owner):
    from asgiref.sync import async_to_sync
    from channels.testing import WebsocketCommunicator
    from django.contrib.auth.models import AnonymousUser

    from devices.consumers import DashboardConsumer

    make_device()

    async def talk(user):
        communicator = WebsocketCommunicator(DashboardConsumer.as_asgi(), "/ws/dashboard/")
        communicator.scope["user"] = user
        connected, _ = await communicator.connect()
        html = await communicator.receive_from(timeout=5) if connected else ""
        await communicator.disconnect()
        return connected, html

    connected, html = async_to_sync(talk)(owner)
    assert connected
    assert 'id="dashboard-live"' in html and "lab-pi" in html
    connected, _ = async_to_sync(talk)(AnonymousUser())
    assert not connected
