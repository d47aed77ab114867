"""The deploy wizard explains its placement (issue 14, item 11): the scores behind each
device on demand, the deciding difference in a sentence, and a shared database server
already on a device counted in its favour. Django's test client; no device is needed."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.urls import reverse

from devices.models import Device
from pooling.models import SharedInstance
from tests.integration.test_marketplace_pages import (
    fresh_catalog,  # noqa: F401  (autouse fixture)
    make_device,
    signed_in,  # noqa: F401  (fixture)
)

pytestmark = pytest.mark.django_db


def _row(body: str, device: Device) -> str:
    return body.split(f'data-device-id="{device.pk}"', 1)[1].split("</details>", 1)[0]


def _wizard(client, slug: str = "n8n") -> str:
    response = client.get(reverse("app_deploy", args=[slug]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    return response.content.decode()


def test_the_wizard_says_what_decided_and_shows_each_score_on_demand(signed_in):  # noqa: F811
    one = make_device("lab-server-1", ram_total_gib=8, ram_used_gib=4, cpu_usage_percent=2)
    two = make_device("lab-server-2", ram_total_gib=8, ram_used_gib=4, cpu_usage_percent=40)
    body = _wizard(signed_in)
    assert "Recommended: lab-server-1" in body
    assert "lab-server-1 is less busy: 2 % vs 40 % CPU." in body
    for device in (one, two):
        row = _row(body, device)
        assert "<details" in row and "How the score is made" in row
        for words in ("Memory", "Storage", "Processor cores", "How busy it is", "Uptime"):
            assert f'<th scope="row">{words}</th>' in row
        assert "<td>40 %</td>" in row and "<td>5 %</td>" in row  # RAM's and uptime's weight
    # the load criterion's score: 100 - 40 on the busier device
    assert '<th scope="row">How busy it is</th><td>10 %</td><td>60</td>' in _row(body, two)


def test_a_shared_database_server_already_there_counts_for_its_device(signed_in):  # noqa: F811
    make_device("lab-server-1", ram_total_gib=8, ram_used_gib=4, cpu_usage_percent=2)
    two = make_device("lab-server-2", ram_total_gib=8, ram_used_gib=4, cpu_usage_percent=20)
    assert "Recommended: lab-server-1" in _wizard(signed_in)

    SharedInstance.objects.create(
        device=two, engine="postgres", version="16", project="hl-pool-postgres",
        admin_password="x", status=SharedInstance.Status.RUNNING,
    )  # fmt: skip
    body = _wizard(signed_in)
    assert "Recommended: lab-server-2" in body
    assert "lab-server-2 already runs a shared database server this app would use" in body
    row = _row(body, two)
    assert "Shared database server already there" in row and "+5.0" in row
    assert "Will use the shared PostgreSQL on lab-server-2" in row


def test_a_shared_server_of_another_engine_does_not_count(signed_in):  # noqa: F811
    make_device("lab-server-1", ram_total_gib=8, ram_used_gib=4, cpu_usage_percent=2)
    two = make_device("lab-server-2", ram_total_gib=8, ram_used_gib=4, cpu_usage_percent=20)
    SharedInstance.objects.create(
        device=two, engine="mariadb", version="11", project="hl-pool-mariadb",
        admin_password="x", status=SharedInstance.Status.RUNNING,
    )  # fmt: skip
    body = _wizard(signed_in)
    assert "Recommended: lab-server-1" in body
    assert "Shared database server already there" not in body


def test_the_highlight_follows_the_chosen_row_not_the_recommendation(signed_in):  # noqa: F811
    make_device("lab-server-1", ram_total_gib=8, ram_used_gib=4, cpu_usage_percent=2)
    make_device("lab-server-2", ram_total_gib=8, ram_used_gib=4, cpu_usage_percent=40)
    body = _wizard(signed_in)
    assert body.count("data-device-option") == 2
    css = (settings.BASE_DIR / "static/css/app.css").read_text()
    assert ".device-option:has(input[type=radio]:checked)" in css
    assert ".device-option.recommended {" not in css  # no highlight pinned to the recommended row
