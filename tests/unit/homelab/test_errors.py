"""One error family: the API's handler and the pages' helper turn every HomelabError into
the same answer."""

from __future__ import annotations

import pytest
from django import forms
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.contrib.messages.storage.fallback import FallbackStorage
from django.contrib.sessions.backends.signed_cookies import SessionStore
from django.test import RequestFactory

from devices.lease import DeviceBusy
from devices.services import DeviceError
from homelab.core.errors import HomelabError
from homelab.core.web import error_page_status, show_error
from marketplace import services as marketplace_services
from marketplace.errors import DeploymentError
from pooling.services import PoolingError
from scheduling.services import PlacementError

ERRORS = [
    (HomelabError("Plain words.", field="name", code=400, fixes=["Do this."]), 400, {}),
    (DeploymentError("deployment: it is busy.", field="deployment", code=409), 409, {}),
    (DeviceError("That name is taken.", device_status="conflict", field="name"), 409,
     {"status": "conflict"}),
    (DeviceError("The device refused the login.", device_status="auth_failed",
                 field="password", fixes=["Check the password."]), 400,
     {"status": "auth_failed"}),
    (PoolingError("1 app still uses the shared PostgreSQL.", code=409), 409,
     {"message": "1 app still uses the shared PostgreSQL."}),
    (PlacementError("slug: no app called 'x'.", field="slug", code=404), 404, {}),
    (DeviceBusy(), 409, {}),
]  # fmt: skip


@pytest.fixture
def api_client(client, db):
    user = get_user_model().objects.create_superuser("admin", "a@example.com", "a-long-password")
    client.force_login(user)
    return client


@pytest.mark.parametrize(("error", "code", "extra"), ERRORS, ids=lambda v: type(v).__name__)
def test_an_endpoint_raising_a_homelab_error_answers_its_code_detail_and_field(
    api_client, monkeypatch, error, code, extra
):
    def refuse(slug):
        raise error

    monkeypatch.setattr(marketplace_services, "recipe_for", refuse)
    response = api_client.get("/api/v1/applications/nextcloud")
    assert response.status_code == code
    body = response.json()
    assert body["detail"] == error.message
    assert body["field"] == error.field
    assert body["fixes"] == error.fixes
    for key, value in extra.items():
        assert body[key] == value


def test_invalid_placement_input_keeps_the_validation_shape(api_client, monkeypatch):
    def refuse(slug):
        raise PlacementError("slug: give an app slug.", field="slug")

    monkeypatch.setattr(marketplace_services, "recipe_for", refuse)
    body = api_client.get("/api/v1/applications/nextcloud").json()
    assert body["errors"] == [{"field": "slug", "message": "slug: give an app slug."}]
    assert body["detail"] == "Please correct: slug: slug: give an app slug."
    assert body["field"] == "slug"


def test_an_unreachable_device_is_a_502_that_says_what_to_check():
    error = PoolingError.unreachable("lab-pi", "connection refused")
    assert error.code == 502
    assert error.message == "lab-pi did not answer over SSH: connection refused"
    assert error.fixes == ["Check that lab-pi is on and connected to the network, then try again."]


# --------------------------------------------------------------------------- pages
class NameForm(forms.Form):
    name = forms.CharField()


def _request():
    request = RequestFactory().post("/")
    request.session = SessionStore()
    request._messages = FallbackStorage(request)
    return request


def test_an_error_naming_a_form_field_is_shown_on_that_field():
    request = _request()
    form = NameForm({"name": "server-01"})
    error = DeviceError("That name is taken.", device_status="conflict", field="name",
                        fixes=["Choose another name."])  # fmt: skip
    assert show_error(request, error, form=form) == 409
    assert form.errors["name"] == ["That name is taken. Choose another name."]
    assert not list(get_messages(request))


def test_an_error_naming_no_field_of_the_form_goes_to_the_top_of_the_form():
    request = _request()
    form = NameForm({"name": "server-01"})
    show_error(request, DeploymentError("Busy.", field="deployment"), form=form, with_fixes=False)
    assert form.non_field_errors() == ["Busy."]


def test_without_a_form_the_error_is_a_message_with_its_fixes():
    request = _request()
    error = PoolingError.unreachable("lab-pi", "timed out")
    status = show_error(request, error)
    assert [str(m) for m in get_messages(request)] == [
        "lab-pi did not answer over SSH: timed out "
        "Check that lab-pi is on and connected to the network, then try again."
    ]
    assert status == 409  # a device that did not answer is not a server error of the page


@pytest.mark.parametrize(("code", "status"), [(404, 404), (409, 409), (422, 422), (502, 409)])
def test_partials_answer_a_4xx_status(code, status):
    assert error_page_status(HomelabError("x", code=code)) == status
