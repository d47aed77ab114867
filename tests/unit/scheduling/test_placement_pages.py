"""The comparison page, the ad-hoc form and the management command."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from scheduling.models import PlacementChoice
from tests.unit.scheduling.factories import make_device

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(client):
    user = get_user_model().objects.create_superuser("owner", password="a-long-password-1")
    client.force_login(user)
    return client


@pytest.fixture
def homelab():
    return {
        "server-01": make_device("server-01", ram_free_gb=4, cpu_usage_percent=85),
        "server-02": make_device("server-02", ram_free_gb=8, cpu_usage_percent=40),
        "pi-zero": make_device("pi-zero", ram_free_gb=0.1, ram_total_gb=0.5, arch="armv6l"),
    }


def test_the_page_needs_login(db):
    from django.test import Client

    get_user_model().objects.create_user("someone", password="a-long-password-1")
    response = Client().get("/placement/vaultwarden/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_the_comparison_page_shows_every_device_with_the_recommended_one_first(client, homelab):
    response = client.get("/placement/nextcloud/")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.index("server-02") < html.index("server-01") < html.index("pi-zero")
    assert "✅ Recommended" in html
    assert "❌ Can't run it" in html  # the wizard's words, not "Not recommended"
    assert "Not recommended" not in html and ">OK<" not in html
    assert "app needs 768 MB" in html  # nextcloud manifest: ram_min_mb 768
    # a door to the wizard with the device chosen, for the devices that can run it
    for name in ("server-01", "server-02"):
        assert f'href="/apps/nextcloud/deploy/?device={homelab[name].pk}"' in html
    assert f"?device={homelab['pi-zero'].pk}" not in html
    assert html.count("Deploy Nextcloud here") == 2


def test_the_wizard_opens_with_the_device_chosen_on_the_comparison_page(client, homelab):
    chosen = homelab["server-01"]  # not the recommended one
    page = client.get(f"/apps/vaultwarden/deploy/?device={chosen.pk}").content.decode()
    assert f'hx-get="/apps/vaultwarden/deploy/?device={chosen.pk}"' in page

    html = client.get(
        f"/apps/vaultwarden/deploy/?device={chosen.pk}", HTTP_HX_REQUEST="true"
    ).content.decode()
    checked = [
        line for line in html.splitlines() if 'name="device_id"' in line or "checked" in line
    ]
    radios = html.split('<input type="radio" name="device_id"')[1:]
    selected = [r for r in radios if r.split(">", 1)[0].strip().endswith("checked")]
    assert len(selected) == 1 and f'value="{chosen.pk}"' in selected[0], checked


def test_a_device_that_cannot_run_the_app_is_not_preselected(client, homelab):
    html = client.get(
        f"/apps/nextcloud/deploy/?device={homelab['pi-zero'].pk}", HTTP_HX_REQUEST="true"
    ).content.decode()
    radios = html.split('<input type="radio" name="device_id"')[1:]
    selected = [r for r in radios if r.split(">", 1)[0].strip().endswith("checked")]
    assert len(selected) == 1 and f'value="{homelab["server-02"].pk}"' in selected[0]


def test_choosing_another_device_says_so(client, homelab):
    response = client.post(
        "/placement/vaultwarden/", {"device_id": homelab["server-01"].pk}, follow=True
    )
    assert response.status_code == 200
    assert "server-01 chosen instead of server-02 for Vaultwarden" in response.content.decode()
    assert PlacementChoice.objects.get().chosen_device == homelab["server-01"]
    assert "Last choice: server-01 chosen instead of server-02" in response.content.decode()


def test_an_unknown_app_page_is_a_404(client, homelab):
    assert client.get("/placement/no-such-app/").status_code == 404


def test_the_policy_switch_returns_a_partial_for_htmx(client, homelab):
    response = client.get("/placement/vaultwarden/?policy=pack", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html and "Policy: pack" in html


def test_ad_hoc_requirements_are_compared(client, homelab):
    response = client.get(
        "/placement/custom/",
        {
            "name": "Thing",
            "min_ram_mb": 6000,
            "min_storage_gb": 1,
            "min_cpu_cores": 1,
            "ports": "8080",
        },
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "Where should Thing run?" in html
    assert "✅ Recommended" in html  # server-02 has 8 GB free


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"recommended_ram_mb": 10}, "recommended_ram_mb", "Must be at least the minimum."),
        ({"ports": "80; http"}, "ports", "'http' is not a port"),
        ({"min_ram_mb": -5}, "min_ram_mb", "greater than or equal to 0"),
    ],
)
def test_ad_hoc_form_errors_name_the_field(client, homelab, changes, field, words):
    query = {"name": "Thing", "min_ram_mb": 1000, "min_storage_gb": 1, "min_cpu_cores": 1}
    response = client.get("/placement/custom/", query | changes)
    form = response.context["form"]
    assert list(form.errors) == [field]
    assert words in form.errors[field][0]


def test_the_index_lists_the_apps(client):
    response = client.get("/placement/")
    assert response.status_code == 200
    assert "Vaultwarden" in response.content.decode()
    assert "until the marketplace arrives" not in response.content.decode()


def test_choosing_a_device_for_ad_hoc_needs_no_longer_promises_future_deployments(client, homelab):
    query = "name=Thing&min_ram_mb=100&min_storage_gb=1&min_cpu_cores=1&ports="
    response = client.post(
        f"/placement/custom/?{query}", {"device_id": homelab["server-01"].pk}, follow=True
    )
    html = response.content.decode()
    assert "once deployments exist" not in html
    assert "Recorded." in html


def test_the_command_prints_the_analysis_table(homelab):
    out = StringIO()
    call_command("placement", "vaultwarden", stdout=out)
    text = out.getvalue()
    assert text.startswith("Analyzing homelab for Vaultwarden (policy: spread)...")
    lines = text.splitlines()
    assert "DEVICE" in lines[2] and "SCORE" in lines[2]
    assert lines[3].startswith(" ✓ server-02") and lines[3].endswith("Recommended  ← Selected")
    assert any(line.startswith(" ✗ pi-zero") for line in lines)
    assert "Recommended: server-02: 8 GB RAM free" in text


def test_the_command_takes_a_policy_and_refuses_unknown_apps(homelab):
    out = StringIO()
    call_command("placement", "vaultwarden", "--policy", "pack", stdout=out)
    assert "(policy: pack)" in out.getvalue()
    with pytest.raises(CommandError, match="no app called 'nope'"):
        call_command("placement", "nope")
