"""App addresses through Django's test client: settings, names, the CA, the page.

No device is reached and no name server is asked: devices are rows, and name lookups go
to a resolver the test hands in (one test resolves "localhost" for real, from /etc/hosts).
"""

from __future__ import annotations

import json
import socket
import time

import pytest
from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store
from django.db import connection

from marketplace.models import Deployment, DeploymentStatus
from proxy import services
from proxy.caddy import Route
from proxy.models import AppAddress, ProxySettings
from tests.unit.scheduling.factories import make_device

pytestmark = pytest.mark.django_db

HOSTILE = [
    "*.home.arpa",
    "a.home.arpa\nb.home.arpa",
    "a.home.arpa }\n:80 {",
    "{a}.home.arpa",
    "a b.home.arpa",
    "$(reboot).home.arpa",
    "a;rm -rf /.home.arpa",
    "a'.home.arpa",
    '"a".home.arpa',
    "A.HOME.ARPA",
]


@pytest.fixture
def pi(db):
    return make_device("pi-4", ram_free_gb=2, address="192.168.1.20")


@pytest.fixture
def nas(db):
    return make_device("nas", ram_free_gb=8, address="192.168.1.30", always_on=False)


def deploy(slug, device, *, instance="default", status=DeploymentStatus.RUNNING, config=None):
    return Deployment.objects.create(
        slug=slug,
        app_name=slug.replace("-", " ").title(),
        device=device,
        instance=instance,
        project=f"hl-{slug}-{instance}",
        status=status,
        config=config or {},
    )


@pytest.fixture
def apps(pi, nas):
    return {
        "vaultwarden": deploy("vaultwarden", pi),
        "n8n": deploy("n8n", nas, instance="family", config={"ports": {"web": 9090}}),
    }


def put(client, path, body, person):
    return client.put(
        f"/api/v1{path}",
        data=json.dumps(body),
        content_type="application/json",
        **person.api_headers(),
    )


# --- names and routes -------------------------------------------------------------------


def test_every_live_app_gets_its_default_name_and_a_route_to_its_device(apps, pi, nas):
    deploy("nextcloud", pi, status=DeploymentStatus.REMOVED)
    deploy("gitea", pi, status=DeploymentStatus.FAILED)
    assert services.routes() == [
        Route("n8n-family.home.arpa", "192.168.1.30", 9090),
        Route("vaultwarden.home.arpa", "192.168.1.20", 8080),
    ]


def test_two_copies_that_would_share_a_name_get_their_devices_name_too(apps, nas):
    deploy("vaultwarden", nas)
    names = [r.hostname for r in services.routes()]
    assert names == ["n8n-family.home.arpa", "vaultwarden-nas.home.arpa", "vaultwarden.home.arpa"]


def test_an_app_without_a_recipe_gets_no_route(pi):
    deploy("retired-app", pi)
    assert services.routes() == []


def test_a_new_domain_renames_every_default_name_but_not_a_chosen_one(apps, pi, cast_admin, client):
    services.app_name_set(deployment_id=apps["n8n"].pk, hostname="flows.example.org")
    services.proxy_settings_save(domain="lab.example.com", device_id=pi.pk, mode="internal_ca")
    assert [r.hostname for r in services.routes()] == [
        "flows.example.org",
        "vaultwarden.lab.example.com",
    ]


def test_a_name_follows_its_app_to_another_device(apps, nas):
    Deployment.objects.filter(pk=apps["vaultwarden"].pk).update(device=nas)
    route = next(r for r in services.routes() if r.hostname == "vaultwarden.home.arpa")
    assert route.upstream_address == "192.168.1.30"


# --- the API ----------------------------------------------------------------------------


def test_the_settings_answer_and_change(client, cast_admin, pi):
    answer = client.get("/api/v1/proxy", **cast_admin.api_headers()).json()
    assert answer == {
        "device_id": None,
        "device": None,
        "domain": "home.arpa",
        "mode": "internal_ca",
        "ca_certificate_url": "/api/v1/proxy/ca.pem",
    }
    response = put(
        client,
        "/proxy",
        {"device_id": pi.pk, "domain": "home.example.com", "mode": "internal_ca"},
        cast_admin,
    )
    assert response.status_code == 200, response.content
    assert response.json()["device"] == "pi-4"
    row = ProxySettings.objects.get()
    assert (row.domain, row.device_id) == ("home.example.com", pi.pk)


@pytest.mark.parametrize("domain", [*HOSTILE, "home.arpa\n", " home.arpa", "", "*"], ids=repr)
def test_a_hostile_domain_is_refused_in_plain_words_and_nothing_changes(client, cast_admin, domain):
    response = put(
        client, "/proxy", {"device_id": None, "domain": domain, "mode": "internal_ca"}, cast_admin
    )
    assert response.status_code == 422, response.content
    answer = response.json()
    assert answer["field"] == "domain"
    assert answer["detail"].startswith("The domain")
    assert services.proxy_settings().domain == "home.arpa"


def test_an_unknown_device_and_the_mode_still_to_come_are_refused(client, cast_admin):
    response = put(
        client,
        "/proxy",
        {"device_id": 999, "domain": "home.arpa", "mode": "internal_ca"},
        cast_admin,
    )
    assert response.status_code == 404
    assert response.json()["detail"] == "There is no device with id 999."
    response = put(
        client,
        "/proxy",
        {"device_id": None, "domain": "example.com", "mode": "acme_dns"},
        cast_admin,
    )
    assert response.status_code == 422
    assert "not available yet" in response.json()["detail"]
    response = put(
        client,
        "/proxy",
        {"device_id": None, "domain": "example.com", "mode": "letsencrypt"},
        cast_admin,
    )
    assert response.status_code == 422


def test_the_ca_certificate_is_downloadable_and_its_key_is_encrypted_at_rest(client, cast_viewer):
    response = client.get("/api/v1/proxy/ca.pem", **cast_viewer.api_headers())
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-x509-ca-cert"
    body = response.content.decode()
    assert body.startswith("-----BEGIN CERTIFICATE-----") and "PRIVATE" not in body
    certificate = x509.load_pem_x509_certificate(response.content)
    assert certificate.subject.rfc4514_string().endswith(f"CN=Homelab CA ({socket.gethostname()})")
    # the same CA the next time
    assert (
        client.get("/api/v1/proxy/ca.pem", **cast_viewer.api_headers()).content == response.content
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT ca_private_key FROM proxy_proxysettings")
        (raw,) = cursor.fetchone()
    assert raw and "PRIVATE KEY" not in raw
    assert "PRIVATE KEY" in ProxySettings.objects.get().ca_private_key


def test_names_are_listed_and_renamed(client, cast_admin, apps):
    names = client.get("/api/v1/proxy/names", **cast_admin.api_headers()).json()
    assert [(n["hostname"], n["upstream"], n["custom"]) for n in names] == [
        ("n8n-family.home.arpa", "192.168.1.30:9090", False),
        ("vaultwarden.home.arpa", "192.168.1.20:8080", False),
    ]
    vault = apps["vaultwarden"].pk
    response = put(client, f"/proxy/names/{vault}", {"hostname": "passwords.home.arpa"}, cast_admin)
    assert response.status_code == 200, response.content
    assert response.json()["url"] == "https://passwords.home.arpa"
    assert AppAddress.objects.get(deployment_id=vault).hostname == "passwords.home.arpa"
    response = put(client, f"/proxy/names/{vault}", {"hostname": ""}, cast_admin)
    assert response.json()["hostname"] == "vaultwarden.home.arpa"
    assert not AppAddress.objects.exists()


@pytest.mark.parametrize("hostname", HOSTILE, ids=repr)
def test_a_hostile_name_is_refused_in_plain_words_and_nothing_is_saved(
    client, cast_admin, apps, hostname
):
    response = put(
        client, f"/proxy/names/{apps['vaultwarden'].pk}", {"hostname": hostname}, cast_admin
    )
    assert response.status_code == 422, response.content
    answer = response.json()
    assert answer["field"] == "hostname"
    assert answer["detail"].startswith("The name") and answer["detail"].endswith(".")
    assert not AppAddress.objects.exists()


def test_a_name_another_app_has_is_refused(client, cast_admin, apps):
    response = put(
        client,
        f"/proxy/names/{apps['vaultwarden'].pk}",
        {"hostname": "n8n-family.home.arpa"},
        cast_admin,
    )
    assert response.status_code == 409
    assert response.json()["detail"] == "n8n-family.home.arpa is already the name of N8N on nas."


def test_huge_ids_answer_404_not_an_error(client, cast_admin):
    huge = 99999999999999999999
    response = put(client, f"/proxy/names/{huge}", {"hostname": "a.home.arpa"}, cast_admin)
    assert response.status_code == 404
    response = put(
        client,
        "/proxy",
        {"device_id": huge, "domain": "home.arpa", "mode": "internal_ca"},
        cast_admin,
    )
    assert response.status_code == 404


def test_renaming_an_app_that_is_gone_says_so(client, cast_admin, pi):
    gone = deploy("vaultwarden", pi, status=DeploymentStatus.REMOVED)
    response = put(client, f"/proxy/names/{gone.pk}", {"hostname": "a.home.arpa"}, cast_admin)
    assert response.status_code == 404
    assert response.json()["detail"] == f"There is no installed app with id {gone.pk}."


# --- the front door's files ---------------------------------------------------------------


def test_the_front_door_files_route_every_name_with_a_certificate_for_each(apps, pi):
    services.proxy_settings_save(domain="home.arpa", device_id=pi.pk, mode="internal_ca")
    files = services.front_door_files(
        certificate_path="/etc/homelab/door.crt", key_path="/etc/homelab/door.key"
    )
    config = json.loads(files.config_json)
    dials = [
        route["handle"][0]["upstreams"][0]["dial"]
        for route in config["apps"]["http"]["servers"]["front_door"]["routes"]
        if "match" in route
    ]
    assert dials == ["192.168.1.30:9090", "192.168.1.20:8080"]
    ca = x509.load_pem_x509_certificate(services.ca_certificate_pem().encode())
    leaf = x509.load_pem_x509_certificate(files.certificate_pem.encode())
    for name in ("vaultwarden.home.arpa", "n8n-family.home.arpa"):
        PolicyBuilder().store(Store([ca])).build_server_verifier(x509.DNSName(name)).verify(
            leaf, []
        )
    assert "PRIVATE" not in repr(files) and "PRIVATE KEY" in files.private_key_pem


# --- name checks --------------------------------------------------------------------------


def fake_resolver(table):
    def resolve(name, port, family=0, type=0, *args):
        answer = table.get(name)
        if answer == "slow":
            time.sleep(3)
            return []
        if not answer:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, 0)) for a in answer]

    return resolve


def test_each_name_says_which_record_to_add_and_whether_it_resolves(apps, pi, nas):
    deploy("gitea", nas)
    deploy("jellyfin", nas)
    services.proxy_settings_save(domain="home.arpa", device_id=pi.pk, mode="internal_ca")
    services.app_name_set(deployment_id=deploy("immich", nas).pk, hostname="photos.example.org")
    resolver = fake_resolver(
        {
            "vaultwarden.home.arpa": ["192.168.1.20"],
            "n8n-family.home.arpa": ["192.168.1.30"],
            "gitea.home.arpa": "slow",
            "photos.example.org": ["203.0.113.9"],
        }
    )
    checks = {
        c.name.hostname: c for c in services.name_checks(resolver=resolver, timeout_seconds=0.5)
    }
    assert {name: c.state for name, c in checks.items()} == {
        "vaultwarden.home.arpa": "ok",
        "n8n-family.home.arpa": "elsewhere",
        "gitea.home.arpa": "slow",
        "jellyfin.home.arpa": "missing",
        "photos.example.org": "not_checked",
    }
    assert (
        checks["jellyfin.home.arpa"].record_type,
        checks["jellyfin.home.arpa"].record_value,
    ) == ("A", "192.168.1.20")
    assert checks["n8n-family.home.arpa"].words == (
        "Resolves to 192.168.1.30, not to the front door (192.168.1.20): change the record."
    )
    assert checks["jellyfin.home.arpa"].words == "Does not resolve yet: add the record."


def test_a_front_door_known_by_name_gets_cname_records(apps, db):
    door = make_device("door", ram_free_gb=1, address="door.lan")
    services.proxy_settings_save(domain="home.arpa", device_id=door.pk, mode="internal_ca")
    resolver = fake_resolver(
        {"door.lan": ["192.168.1.5"], "vaultwarden.home.arpa": ["192.168.1.5"]}
    )
    checks = {c.name.hostname: c for c in services.name_checks(resolver=resolver)}
    assert checks["vaultwarden.home.arpa"].record_type == "CNAME"
    assert checks["vaultwarden.home.arpa"].state == "ok"
    assert checks["n8n-family.home.arpa"].state == "missing"
    assert services.hosts_file_line() == ""


def test_slow_name_servers_cost_one_deadline_not_one_per_name():
    names = [f"app{i}.home.arpa" for i in range(4)]
    started = time.monotonic()
    answers = services._resolve_all(
        names, timeout_seconds=0.5, resolver=fake_resolver(dict.fromkeys(names, "slow"))
    )
    assert time.monotonic() - started < 1.5
    assert answers == dict.fromkeys(names)


def test_the_real_resolver_is_asked_with_a_time_limit():
    answers = services._resolve_all(["localhost"], timeout_seconds=2, resolver=socket.getaddrinfo)
    assert "127.0.0.1" in answers["localhost"] or "::1" in answers["localhost"]


# --- the page -----------------------------------------------------------------------------


@pytest.fixture
def no_dns(monkeypatch):
    monkeypatch.setattr(
        services.socket, "getaddrinfo", fake_resolver({"vaultwarden.home.arpa": ["192.168.1.20"]})
    )


def test_the_page_shows_names_records_and_how_to_trust_the_ca(cast_admin, apps, pi, no_dns):
    services.proxy_settings_save(domain="home.arpa", device_id=pi.pk, mode="internal_ca")
    response = cast_admin.client().get("/settings/app-addresses/")
    assert response.status_code == 200
    text = response.content.decode()
    for words in (
        "Windows",
        "macOS",
        "Linux",
        "Android",
        "iPhone",
        "/api/v1/proxy/ca.pem",
        "Fingerprint",
    ):
        assert words in text, words
    assert "https://vaultwarden.home.arpa" in text and "https://n8n-family.home.arpa" in text
    assert "192.168.1.20 n8n-family.home.arpa vaultwarden.home.arpa" in text
    assert "Resolves to the front door (pi-4)." in text
    assert "Does not resolve yet: add the record." in text
    assert "PRIVATE" not in text
    assert 'href="/settings/app-addresses/"' in text  # the nav link


def test_the_page_suggests_an_always_on_device(cast_admin, pi, nas):
    text = cast_admin.client().get("/settings/app-addresses/").content.decode()
    assert "Suggestion: pi-4 stays on" in text
    assert "nas (192.168.1.30): not always on" in text


def test_the_page_saves_the_settings(cast_admin, pi, no_dns):
    client = cast_admin.client()
    response = client.post(
        "/settings/app-addresses/",
        {"domain": "home.example.com", "device": str(pi.pk), "mode": "internal_ca"},
    )
    assert response.status_code == 302
    assert services.proxy_settings().domain == "home.example.com"
    assert "Saved the app addresses settings." in client.get(response["Location"]).content.decode()


@pytest.mark.parametrize(
    "domain", ["*.home.arpa", "home.arpa\n}", "home arpa", "{home}.arpa"], ids=repr
)
def test_the_page_refuses_a_hostile_domain_and_keeps_what_was_typed(cast_admin, domain, no_dns):
    response = cast_admin.client().post(
        "/settings/app-addresses/", {"domain": domain, "device": "", "mode": "internal_ca"}
    )
    assert response.status_code == 422
    assert "The domain" in response.content.decode()
    assert services.proxy_settings().domain == "home.arpa"


def test_the_page_renames_an_app_and_refuses_a_wildcard(cast_admin, apps, no_dns):
    client = cast_admin.client()
    vault = apps["vaultwarden"].pk
    response = client.post(
        "/settings/app-addresses/",
        {"action": "rename", "deployment_id": vault, "hostname": "*.home.arpa"},
    )
    assert response.status_code == 422
    assert "wildcards are not allowed" in response.content.decode()
    response = client.post(
        "/settings/app-addresses/",
        {"action": "rename", "deployment_id": vault, "hostname": "vault.home.arpa"},
    )
    assert response.status_code == 302
    assert AppAddress.objects.get().hostname == "vault.home.arpa"


def test_only_admins_see_the_page(cast):
    assert cast["operator"].client().get("/settings/app-addresses/").status_code == 403
    assert cast["viewer"].client().get("/settings/app-addresses/").status_code == 403


def test_the_admin_shows_the_settings_but_never_the_cas_key(cast_admin, admin_client, apps):
    services.app_name_set(deployment_id=apps["vaultwarden"].pk, hostname="vault.home.arpa")
    row = ProxySettings.objects.get()
    services.certificate_authority()
    for url in (
        "/admin/proxy/proxysettings/",
        f"/admin/proxy/proxysettings/{row.pk}/change/",
        "/admin/proxy/appaddress/",
    ):
        response = admin_client.get(url)
        assert response.status_code == 200, url
        assert "PRIVATE" not in response.content.decode(), url


def test_the_page_says_when_the_front_door_is_offline(cast_admin, pi, no_dns):
    services.proxy_settings_save(domain="home.arpa", device_id=pi.pk, mode="internal_ca")
    client = cast_admin.client()
    assert (
        "no app answers by its name" not in client.get("/settings/app-addresses/").content.decode()
    )
    pi.status = "offline"
    pi.save(update_fields=["status"])
    text = client.get("/settings/app-addresses/").content.decode()
    assert "The front door's device, pi-4, is offline: no app answers by its name" in text
