"""Every form that posts with htmx shows its errors beside the field they concern, in the
field's own words (issue 14, item 1).

The forms (`grep -rn "hx-post" templates */templates`): the deploy wizard, the add-device
wizard and its network scan. Each test posts a bad value the way htmx does (HX-Request)
and finds the message in the returned HTML inside the field's own error box, with the
label the person sees; never the service's technical name (`config.ports.web`,
`instance`).

htmx only swaps the answer in when its status is one app.js lets through
(`responseHandling`); that is checked here too, since a 422 that htmx drops is the
silent failure this item is about.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.urls import reverse

from marketplace.recipes import clear_catalog_cache
from tests.integration.test_marketplace_pages import make_deployment, make_device

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def builtin_catalog(settings):
    settings.HOMELAB_RECIPE_DIRS = []
    clear_catalog_cache()
    yield
    clear_catalog_cache()


@pytest.fixture
def signed_in(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("owner", password="pw-Owner-123"))
    return client


HTMX = {"HTTP_HX_REQUEST": "true"}
APP_JS = Path(__file__).resolve().parents[2] / "static" / "js" / "app.js"


class _ElementText(HTMLParser):
    """The text inside the element with a given id (and the elements within it)."""

    VOID = {"input", "br", "img", "meta", "link", "hr", "source", "wbr"}

    def __init__(self, element_id: str):
        super().__init__()
        self.element_id = element_id
        self.depth = 0
        self.found = False
        self.parts: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in self.VOID:
            return
        if self.depth:
            self.depth += 1
        elif dict(attrs).get("id") == self.element_id:
            self.depth = 1
            self.found = True

    def handle_endtag(self, tag):
        if self.depth and tag not in self.VOID:
            self.depth -= 1

    def handle_data(self, data):
        if self.depth:
            self.parts.append(data)


def text_of(html: str, element_id: str) -> str:
    parser = _ElementText(element_id)
    parser.feed(html)
    assert parser.found, f"no element with id={element_id!r} in the answer"
    return " ".join(" ".join(parser.parts).split())


def label_for(html: str, input_id: str) -> str:
    match = re.search(rf'<label[^>]*for="{re.escape(input_id)}"[^>]*>(.*?)</label>', html, re.S)
    assert match, f"no label for {input_id}"
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(1)).split())


# ------------------------------------------------------------------------ deploy wizard
def _deploy(client, slug: str, **fields):
    data = {"device_id": "", "instance": "default", "env": "", **fields}
    return client.post(reverse("app_deploy", args=[slug]), data, **HTMX)


def test_a_bad_copy_name_is_shown_at_the_name_box_in_its_own_words(signed_in):
    make_device("server-1", ram_total_gib=8, ram_used_gib=1)

    response = _deploy(signed_in, "vaultwarden", instance="Family Vault!")

    assert response.status_code == 422
    html = response.content.decode()
    assert label_for(html, "id_instance") == "Name of this copy"
    errors = text_of(html, "instance-errors")
    assert errors.startswith("Name of this copy: use 1-31 lowercase letters"), errors
    assert "instance" not in errors


def test_a_port_out_of_range_is_shown_at_the_web_port_box(signed_in):
    make_device("server-1", ram_total_gib=8, ram_used_gib=1)

    response = _deploy(signed_in, "uptime-kuma", port_web="70000")

    assert response.status_code == 422
    html = response.content.decode()
    assert label_for(html, "id_port_web") == "Web port"
    errors = text_of(html, "port_web-errors")
    assert errors.startswith("Web port:"), errors
    assert "config.ports" not in errors


def test_a_port_taken_by_another_app_is_shown_at_the_web_port_box(signed_in):
    device = make_device("server-1", ram_total_gib=8, ram_used_gib=1)
    make_deployment(device, config={"ports": {"web": 3002}})  # Vaultwarden holds 3002

    response = _deploy(signed_in, "uptime-kuma", device_id=str(device.pk), port_web="3002")

    assert response.status_code == 422
    html = response.content.decode()
    errors = text_of(html, "port_web-errors")
    assert errors.startswith("Web port: port 3002/tcp (web) on server-1 is claimed by"), errors
    assert 'choose another host port in "Web port"' in errors
    assert "config.ports" not in errors
    # the Advanced part, where the box is, opens by itself
    assert re.search(r'<details class="advanced"\s+open>', html)


def test_a_bad_extra_setting_is_shown_at_the_extra_settings_box(signed_in):
    make_device("server-1", ram_total_gib=8, ram_used_gib=1)

    response = _deploy(signed_in, "vaultwarden", env="no equals sign here")

    assert response.status_code == 422
    html = response.content.decode()
    assert label_for(html, "id_env") == "Extra settings (environment variables)"
    assert "Line 1 has no '='" in text_of(html, "env-errors")


# --------------------------------------------------------------------- add-device wizard
def test_a_bad_device_port_is_shown_at_the_port_box(signed_in):
    response = signed_in.post(
        reverse("device_add"),
        {
            "action": "test",
            "name": "pi",
            "address": "192.168.1.20",
            "port": "twenty-two",
            "username": "pi",
            "password": "x",
        },
        **HTMX,
    )

    assert response.status_code == 200  # swapped by htmx's defaults
    html = response.content.decode()
    assert "The port is a whole number; if unsure, use 22." in text_of(html, "err-port")
    page = signed_in.get(reverse("device_add")).content.decode()
    assert label_for(page, "id_port") == "Port"


def test_a_bad_device_name_is_shown_at_the_name_box(signed_in):
    response = signed_in.post(
        reverse("device_add"),
        {
            "action": "save",
            "name": "my pi!",
            "address": "192.168.1.20",
            "port": "22",
            "username": "pi",
            "password": "x",
        },
        **HTMX,
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert text_of(html, "err-name"), "the name's error box is empty"
    assert text_of(html, "err-address") == ""


def test_a_bad_network_to_scan_is_shown_at_the_network_box(signed_in):
    response = signed_in.post(reverse("device_scan"), {"cidr": "my home"}, **HTMX)

    assert response.status_code == 200
    html = response.content.decode()
    assert "That isn't a network we understand" in text_of(html, "err-cidr")
    page = signed_in.get(reverse("device_add")).content.decode()
    assert label_for(page, "id_cidr") == "Network to search"


# --------------------------------------------------------------------------- htmx config
def test_htmx_swaps_the_forms_422_and_409_answers():
    """htmx 2 drops 4xx answers by default; app.js lets 409 and 422 through (a form with
    its errors) before the catch-all that drops the other errors."""
    script = APP_JS.read_text()
    config = script[script.index("responseHandling") :]
    rule = re.search(r'\{\s*code:\s*"409\|422(\|429)?",\s*swap:\s*true', config)
    drop = re.search(r'\{\s*code:\s*"\[45\]\.\.",\s*swap:\s*false', config)
    assert rule and drop and rule.start() < drop.start()
