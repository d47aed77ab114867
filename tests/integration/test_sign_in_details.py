"""'Show sign-in details' on an app's page (issue 14, item 3).

The generated login of an app (Vaultwarden's admin token, Nextcloud's admin password) is
shown to an admin who re-enters their own password, in that one answer only, never cached,
and each reveal is recorded without the value. Django's test client; no device is needed.
"""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from marketplace.models import SignInReveal
from marketplace.sign_in import MAX_WRONG_PASSWORDS
from tests.integration.test_marketplace_pages import (
    SECRET_VALUE,
    fresh_catalog,  # noqa: F401  (autouse fixture)
    make_deployment,
    make_device,
)

pytestmark = pytest.mark.django_db

OWNER_PASSWORD = "pw-Owner-123"


@pytest.fixture
def owner(client, django_user_model):
    user = django_user_model.objects.create_superuser("owner", password=OWNER_PASSWORD)
    client.force_login(user)
    return client


@pytest.fixture
def vaultwarden():
    return make_deployment(make_device("server-01", ram_total_gib=8, ram_used_gib=2))


def _reveal(client, deployment, password, **headers):
    return client.post(
        reverse("deployment_sign_in", args=[deployment.pk]), {"password": password}, **headers
    )


def test_the_app_page_offers_sign_in_details_but_holds_no_secret(owner, vaultwarden):
    body = owner.get(reverse("deployment_detail", args=[vaultwarden.pk])).content.decode()
    assert "Show sign-in details" in body
    assert reverse("deployment_sign_in", args=[vaultwarden.pk]) in body
    assert SECRET_VALUE not in body


def test_a_wrong_password_is_refused_beside_the_field(owner, vaultwarden):
    response = _reveal(owner, vaultwarden, "not-my-password", HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 422
    assert SECRET_VALUE not in body
    errors = body.split('id="sign-in-password-errors"', 1)[1].split("</div>", 1)[0]
    assert "That is not your password" in errors
    assert "no-store" in response["Cache-Control"]


def test_the_right_password_shows_the_value_with_a_copy_button_never_cached(owner, vaultwarden):
    response = _reveal(owner, vaultwarden, OWNER_PASSWORD, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200
    assert SECRET_VALUE in body
    assert "<html" not in body and 'data-copy="sign-in-value-1"' in body
    assert "Admin token" in body and "/admin" in body
    assert "no-store" in response["Cache-Control"]
    # a reload hides it again
    again = owner.get(reverse("deployment_detail", args=[vaultwarden.pk])).content.decode()
    assert SECRET_VALUE not in again


def test_without_javascript_the_whole_page_comes_back_with_the_value(owner, vaultwarden):
    response = _reveal(owner, vaultwarden, OWNER_PASSWORD)
    assert response.status_code == 200
    body = response.content.decode()
    assert "<html" in body and SECRET_VALUE in body
    assert "no-store" in response["Cache-Control"]


def test_nextcloud_shows_the_user_name_and_its_admin_password(owner):
    device = make_device("server-01", ram_total_gib=8, ram_used_gib=2)
    password = "NextcloudAdminPw0123456789"
    nextcloud = make_deployment(
        device,
        slug="nextcloud",
        app_name="Nextcloud",
        project="hl-nextcloud-default",
        secrets=json.dumps({"admin_password": password, "db_password": "DbPw0123456789xyz"}),
    )
    body = _reveal(owner, nextcloud, OWNER_PASSWORD, HTTP_HX_REQUEST="true").content.decode()
    assert password in body and '<code id="sign-in-user">admin</code>' in body
    assert "DbPw0123456789xyz" not in body  # a secret not meant for a person stays hidden


def test_each_reveal_is_recorded_in_the_apps_history_without_the_secret(owner, vaultwarden):
    _reveal(owner, vaultwarden, "wrong-one")
    _reveal(owner, vaultwarden, OWNER_PASSWORD)
    rows = list(SignInReveal.objects.order_by("id").values("username", "shown", "deployment"))
    assert rows == [
        {"username": "owner", "shown": False, "deployment": vaultwarden.pk},
        {"username": "owner", "shown": True, "deployment": vaultwarden.pk},
    ]
    for reveal in SignInReveal.objects.all():
        assert SECRET_VALUE not in json.dumps(
            {f.name: str(getattr(reveal, f.name)) for f in reveal._meta.fields}
        )
    body = owner.get(reverse("deployment_detail", args=[vaultwarden.pk])).content.decode()
    assert "Shown to owner on" in body and SECRET_VALUE not in body


def test_a_person_who_is_not_an_admin_gets_403_and_no_button(client, django_user_model):
    user = django_user_model.objects.create_user("member", password="pw-Member-123")
    client.force_login(user)
    deployment = make_deployment(make_device("server-01", ram_total_gib=8, ram_used_gib=2))
    response = _reveal(client, deployment, "pw-Member-123")
    assert response.status_code == 403
    assert SECRET_VALUE not in response.content.decode()
    body = client.get(reverse("deployment_detail", args=[deployment.pk])).content.decode()
    assert 'id="sign-in"' not in body
    assert reverse("deployment_sign_in", args=[deployment.pk]) not in body
    assert not SignInReveal.objects.exists()


def test_too_many_wrong_passwords_stop_even_the_right_one_for_a_while(owner, vaultwarden):
    for _ in range(MAX_WRONG_PASSWORDS):
        assert _reveal(owner, vaultwarden, "guess").status_code == 422
    response = _reveal(owner, vaultwarden, OWNER_PASSWORD, HTTP_HX_REQUEST="true")
    assert response.status_code == 429
    body = response.content.decode()
    assert "Too many wrong passwords" in body and SECRET_VALUE not in body


def test_an_app_without_a_login_to_show_has_no_panel_and_refuses(owner):
    device = make_device("server-01", ram_total_gib=8, ram_used_gib=2)
    kuma = make_deployment(
        device,
        slug="uptime-kuma",
        app_name="Uptime Kuma",
        project="hl-uptime-kuma-default",
        secrets="{}",
    )
    body = owner.get(reverse("deployment_detail", args=[kuma.pk])).content.decode()
    assert 'id="sign-in"' not in body
    assert _reveal(owner, kuma, OWNER_PASSWORD).status_code == 403


def test_the_reveal_only_answers_posts(owner, vaultwarden):
    response = owner.get(reverse("deployment_sign_in", args=[vaultwarden.pk]))
    assert response.status_code == 405
