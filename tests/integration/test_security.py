"""Security baseline: login rate limiting, trusted proxies, CSRF on htmx, no open pages."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import override_settings
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner():
    return get_user_model().objects.create_superuser("owner", password="a-long-test-password")


@pytest.fixture
def axes_on(settings):
    from axes.handlers.proxy import AxesProxyHandler

    settings.AXES_ENABLED = True
    AxesProxyHandler.implementation = None  # pick up the setting
    yield
    AxesProxyHandler.implementation = None


def _login(client, username, password, address="203.0.113.7"):
    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address)


def test_login_is_locked_after_repeated_failures_for_that_account(client, owner, axes_on, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _login(client, "owner", "wrong").status_code == 200
    assert _login(client, "owner", "wrong").status_code == 429  # the limit-th failure locks
    locked = _login(client, "owner", "a-long-test-password")
    assert locked.status_code == 429
    # The right password does not get through while locked, from another address either.
    assert _login(client, "owner", "a-long-test-password", address="198.51.100.9").status_code == 429


def test_login_is_locked_per_address_across_accounts(client, owner, axes_on, settings):
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        _login(client, f"nobody{attempt}", "wrong", address="192.0.2.50")
    assert _login(client, "owner", "a-long-test-password", address="192.0.2.50").status_code == 429
    assert _login(client, "owner", "a-long-test-password", address="192.0.2.51").status_code == 302


def test_x_forwarded_for_is_ignored_from_an_untrusted_peer(rf):
    from homelab.middleware import TrustedProxyMiddleware

    seen = {}
    middleware = TrustedProxyMiddleware(lambda request: seen.setdefault("addr", request.META["REMOTE_ADDR"]))
    with override_settings(TRUSTED_PROXIES=[]):
        middleware(rf.get("/", REMOTE_ADDR="198.51.100.2", HTTP_X_FORWARDED_FOR="127.0.0.1"))
    assert seen["addr"] == "198.51.100.2"


def test_x_forwarded_for_is_used_from_a_trusted_proxy(rf):
    from homelab.middleware import TrustedProxyMiddleware

    seen = {}
    middleware = TrustedProxyMiddleware(lambda request: seen.setdefault("addr", request.META["REMOTE_ADDR"]))
    with override_settings(TRUSTED_PROXIES=["10.9.9.9"]):
        middleware(rf.get("/", REMOTE_ADDR="10.9.9.9", HTTP_X_FORWARDED_FOR="127.0.0.1, 198.51.100.3"))
    assert seen["addr"] == "198.51.100.3"


def test_htmx_posts_without_the_csrf_token_are_refused(owner):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    response = client.post(reverse("device_add"), {"name": "x"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 403


def test_pages_send_the_csrf_token_for_htmx(client, owner):
    client.force_login(owner)
    html = client.get(reverse("dashboard")).content.decode()
    assert "hx-headers" in html and "X-CSRFToken" in html


@pytest.mark.parametrize("name", ["dashboard", "device_list", "device_add", "api_tokens", "placement_index"])
def test_pages_need_a_login(client, owner, name):
    response = client.get(reverse(name))
    assert response.status_code == 302 and reverse("login") in response["Location"]
