"""Export and import of the whole homelab as one YAML file (issue 17, part 8).

Import records what is missing: devices become "devices to add" (they need their login
once; the product makes no device without its key) and apps become "apps to deploy"
(an app needs an added device that answers). Nothing is saved when one field is wrong.
"""

from __future__ import annotations

import io

import pytest
import yaml
from django.core.management import CommandError, call_command
from django.urls import reverse

from devices.models import Device
from fleet.models import AppToDeploy, DeviceToAdd
from fleet.services import homelab_export
from marketplace.models import Deployment
from pooling.models import PooledDatabase, SharedInstance
from tests.integration.fleet_data import make_app, make_device, make_shared

pytestmark = pytest.mark.django_db
SECRETS = ("PRIVATE-KEY", "AAAAHOSTKEY", "PASSWORD-NEVER", "generated-secret-value", "hunter2")


@pytest.fixture
def homelab():
    pi = make_device(
        "pi-4",
        address="192.168.1.20",
        username="pi",
        device_type="pi",
        location="Office",
        always_on=False,
    )
    nas = make_device("nas", address="nas.local", port=2222, username="admin", device_type="nas")
    gitea = make_app(
        pi,
        "gitea",
        config={"ports": {"web": 3000}, "env": {"GITEA_TITLE": "Home", "SMTP_PASSWORD": "hunter2"}},
    )
    make_app(
        nas,
        "vaultwarden",
        instance="family",
        config={"env": {"MY_SETTING": "hunter2"}, "secret_env": ["MY_SETTING"]},
    )
    make_app(nas, "jellyfin", status="removed")
    make_shared(pi, gitea)
    return pi, nas


def _wipe():
    PooledDatabase.objects.all().delete()
    SharedInstance.objects.all().delete()
    Deployment.objects.all().delete()
    Device.objects.all().delete()


def _definitions(document: dict) -> tuple[list, list]:
    return document["devices"], sorted(document["apps"], key=lambda a: (a["device"], a["slug"]))


def test_the_export_holds_definitions_and_no_secret(homelab, cast_viewer):
    response = cast_viewer.client().get("/api/v1/export")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/yaml"
    assert "attachment" in response["Content-Disposition"]
    text = response.content.decode()
    for secret in SECRETS:
        assert secret not in text
    document = yaml.safe_load(text)
    assert document["version"] == 1
    assert document["devices"] == [
        {
            "name": "nas",
            "address": "nas.local",
            "port": 2222,
            "username": "admin",
            "type": "nas",
            "location": "",
            "always_on": True,
        },
        {
            "name": "pi-4",
            "address": "192.168.1.20",
            "port": 22,
            "username": "pi",
            "type": "pi",
            "location": "Office",
            "always_on": False,
        },
    ]
    apps = {(a["slug"], a["instance"], a["device"]): a["config"] for a in document["apps"]}
    assert set(apps) == {("gitea", "default", "pi-4"), ("vaultwarden", "family", "nas")}
    assert apps[("gitea", "default", "pi-4")] == {
        "ports": {"web": 3000},
        "env": {"GITEA_TITLE": "Home", "SMTP_PASSWORD": "••••••"},
    }
    assert apps[("vaultwarden", "family", "nas")]["env"] == {"MY_SETTING": "••••••"}
    assert document["shared_databases"] == [
        {"device": "pi-4", "engine": "postgres", "version": "16-alpine"}
    ]


def test_export_wipe_import_gives_the_same_devices_and_apps_definitions(homelab, cast_admin):
    client = cast_admin.client()
    before = client.get("/api/v1/export").content
    _wipe()

    response = client.post("/api/v1/import", data=before, content_type="application/yaml")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["devices_to_add"] == ["nas", "pi-4"]
    assert sorted(body["apps_to_deploy"]) == ["gitea on pi-4", "vaultwarden (family) on nas"]
    assert any("Add these devices with their login" in step for step in body["to_do"])
    assert any("Deploy these apps once their device is added" in step for step in body["to_do"])
    assert Device.objects.count() == 0, "no half devices: they need their login"
    assert DeviceToAdd.objects.count() == 2 and AppToDeploy.objects.count() == 2
    after = yaml.safe_load(client.get("/api/v1/export").content)
    assert _definitions(after) == _definitions(yaml.safe_load(before))

    again = client.post("/api/v1/import", data=before, content_type="application/yaml")
    assert again.status_code == 200
    assert DeviceToAdd.objects.count() == 2 and AppToDeploy.objects.count() == 2


def test_import_leaves_what_is_already_here(homelab, cast_admin):
    client = cast_admin.client()
    text = client.get("/api/v1/export").content
    body = client.post("/api/v1/import", data=text, content_type="application/yaml").json()
    assert body["devices_already_here"] == ["nas", "pi-4"] and body["devices_to_add"] == []
    assert body["apps_to_deploy"] == [] and len(body["apps_already_here"]) == 2
    assert body["to_do"] == [
        "Nothing to do for the shared database servers: each starts again when the first app that uses it is deployed."
    ]
    assert DeviceToAdd.objects.count() == 0 and AppToDeploy.objects.count() == 0


def _valid() -> dict:
    return {
        "version": 1,
        "devices": [
            {
                "name": "pi-4",
                "address": "192.168.1.20",
                "port": 22,
                "username": "pi",
                "type": "pi",
                "location": "",
                "always_on": True,
            }
        ],
        "apps": [
            {
                "slug": "gitea",
                "instance": "default",
                "device": "pi-4",
                "config": {"env": {"GITEA_TITLE": "Home"}},
            }
        ],
    }


def _with(path: str, value) -> str:
    document = _valid()
    target = document
    *parents, last = path.split(".")
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    target[last] = value
    return yaml.safe_dump(document)


REFUSED = [
    ("not: [valid", "file"),
    ("- just\n- a list\n", "file"),
    (yaml.safe_dump({**_valid(), "version": 2}), "version"),
    (yaml.safe_dump({k: v for k, v in _valid().items() if k != "version"}), "version"),
    (_with("devices.0.name", "pi-4\nrm -rf /"), "devices[0].name"),
    (_with("devices.0.name", "pi;reboot"), "devices[0].name"),
    (_with("devices.0.address", "10.0.0.1 && curl x"), "devices[0].address"),
    (_with("devices.0.username", "$(id)"), "devices[0].username"),
    (_with("devices.0.port", 70000), "devices[0].port"),
    (_with("devices.0.type", "toaster"), "devices[0].type"),
    (_with("devices.0.private_key", "-----BEGIN"), "devices[0].private_key"),
    (_with("apps.0.slug", "gitea`id`"), "apps[0].slug"),
    (_with("apps.0.slug", "not-in-the-catalog"), "apps[0].slug"),
    (_with("apps.0.instance", "a b"), "apps[0].instance"),
    (_with("apps.0.device", "nowhere"), "apps[0].device"),
    (_with("apps.0.config", {"env": {"BAD NAME": "x"}}), "apps[0].config.env"),
    (_with("apps.0.config", {"env": {"OK": "line\nnext"}}), "apps[0].config.env.OK"),
    (_with("apps.0.config", {"command": "sh"}), "apps[0].config.command"),
]


@pytest.mark.parametrize(("text", "field"), REFUSED, ids=[f for _, f in REFUSED])
def test_a_bad_file_is_refused_with_422_naming_the_field_and_nothing_is_saved(
    cast_admin, text, field
):
    response = cast_admin.client().post(
        "/api/v1/import", data=text, content_type="application/yaml"
    )
    assert response.status_code == 422, response.content
    body = response.json()
    assert body["field"] == field, body
    assert body["detail"].startswith(f"{field}: ")
    assert "nothing was saved" in " ".join(body["fixes"])
    assert DeviceToAdd.objects.count() == 0 and AppToDeploy.objects.count() == 0


def test_one_bad_app_keeps_the_good_device_from_being_saved(cast_admin):
    document = _valid()
    document["apps"].append({"slug": "gitea", "device": "pi-4", "instance": "two|three"})
    response = cast_admin.client().post(
        "/api/v1/import", data=yaml.safe_dump(document), content_type="application/yaml"
    )
    assert response.status_code == 422
    assert response.json()["field"] == "apps[1].instance"
    assert DeviceToAdd.objects.count() == 0 and AppToDeploy.objects.count() == 0


def test_a_secret_typed_into_the_file_is_never_stored(cast_admin):
    text = _with("apps.0.config", {"env": {"ADMIN_TOKEN": "hunter2", "TITLE": "Home"}})
    assert (
        cast_admin.client()
        .post("/api/v1/import", data=text, content_type="application/yaml")
        .status_code
        == 200
    )
    assert AppToDeploy.objects.get().config == {"env": {"ADMIN_TOKEN": "••••••", "TITLE": "Home"}}


def test_only_an_admin_imports(cast_operator):
    response = cast_operator.client().post(
        "/api/v1/import", data=yaml.safe_dump(_valid()), content_type="application/yaml"
    )
    assert response.status_code == 403
    assert DeviceToAdd.objects.count() == 0


def test_the_page_downloads_and_imports_and_lists_what_is_left_to_do(homelab, cast_admin):
    client = cast_admin.client()
    page = client.get(reverse("export_import"))
    assert page.status_code == 200
    assert reverse("export_download") in page.content.decode()
    download = client.get(reverse("export_download"))
    assert download.status_code == 200 and download["Cache-Control"] == "no-store"
    text = download.content
    _wipe()

    upload = io.BytesIO(text)
    upload.name = "homelab.yaml"
    answer = client.post(reverse("export_import"), {"file": upload})

    assert answer.status_code == 200
    html = answer.content.decode()
    assert "Imported." in html and "Add these devices with their login" in html
    assert (
        "<strong>pi-4</strong>: pi@192.168.1.20" in html
        and "vaultwarden</a> (family) on nas" in html
    )


def test_the_page_shows_a_refused_file_in_plain_words(cast_admin):
    upload = io.BytesIO(b"version: 7\n")
    upload.name = "homelab.yaml"
    answer = cast_admin.client().post(reverse("export_import"), {"file": upload})
    assert answer.status_code == 422
    html = answer.content.decode()
    assert "The file was not imported: version: 7 is not a version this install knows" in html
    assert DeviceToAdd.objects.count() == 0


def test_a_viewer_sees_the_export_but_no_import_form(cast_viewer):
    html = cast_viewer.client().get(reverse("export_import")).content.decode()
    assert "Download homelab.yaml" in html and 'enctype="multipart/form-data"' not in html


def test_the_commands_export_to_a_file_and_import_it(homelab, tmp_path):
    target = tmp_path / "homelab.yaml"
    call_command("export_homelab", str(target), stderr=io.StringIO())
    exported = yaml.safe_load(target.read_text())
    assert _definitions(exported) == _definitions(homelab_export())
    _wipe()
    out = io.StringIO()
    call_command("import_homelab", str(target), stdout=out)
    assert (
        "Add these devices with their login (Add device), once each: nas, pi-4." in out.getvalue()
    )
    assert DeviceToAdd.objects.count() == 2

    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\ndevices:\n  - name: 'a b'\n")
    with pytest.raises(CommandError, match=r"Nothing was imported\. devices\[0\]\.name"):
        call_command("import_homelab", str(bad))
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("import_homelab", str(tmp_path / "missing.yaml"))


def test_the_page_links_each_device_to_add_and_each_app_whose_device_is_back(cast_admin):
    text = yaml.safe_dump(_valid())
    assert (
        cast_admin.client()
        .post("/api/v1/import", data=text, content_type="application/yaml")
        .status_code
        == 200
    )
    html = cast_admin.client().get(reverse("export_import")).content.decode()
    assert f'href="{reverse("device_add")}?address=192.168.1.20&amp;port=22"' in html
    assert "gitea</a> on pi-4, with 1 setting: waits until pi-4 is added" in html

    device = make_device("pi-4", address="192.168.1.20")
    html = cast_admin.client().get(reverse("export_import")).content.decode()
    assert "<strong>pi-4</strong>" not in html, "an added device is no longer waiting"
    assert (
        f'href="{reverse("app_deploy", args=["gitea"])}?device={device.pk}">Deploy it</a>' in html
    )

    make_app(device, "gitea")
    html = cast_admin.client().get(reverse("export_import")).content.decode()
    assert "Nothing is waiting." in html
