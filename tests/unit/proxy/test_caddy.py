"""The front door's Caddy configuration: a pure function of routes, refusing anything odd."""

from __future__ import annotations

import json

import pytest

from proxy.caddy import NOT_FOUND_BODY, Route, caddy_config, caddy_json

FILES = {
    "certificate_path": "/etc/homelab/front-door.crt",
    "key_path": "/etc/homelab/front-door.key",
}


def _routes(config: dict) -> list[dict]:
    return config["apps"]["http"]["servers"]["front_door"]["routes"]


def test_each_name_goes_to_its_device_and_port_and_any_other_name_gets_a_404():
    config = caddy_config(
        [
            Route("n8n.home.arpa", "192.168.1.21", 5678),
            Route("vaultwarden.home.arpa", "pi-4.local", 8080),
        ],
        **FILES,
    )
    routes = _routes(config)
    assert routes[0]["match"] == [{"host": ["n8n.home.arpa"]}]
    assert routes[0]["handle"][0]["upstreams"] == [{"dial": "192.168.1.21:5678"}]
    assert routes[1]["handle"][0]["upstreams"] == [{"dial": "pi-4.local:8080"}]
    assert "match" not in routes[-1] and routes[-1]["handle"][0]["status_code"] == 404
    assert routes[-1]["handle"][0]["body"] == NOT_FOUND_BODY
    assert (
        config["apps"]["tls"]["certificates"]["load_files"][0]["certificate"]
        == FILES["certificate_path"]
    )
    assert config["apps"]["http"]["servers"]["front_door"]["automatic_https"] == {"disable": True}
    assert config["apps"]["http"]["servers"]["to_https"]["listen"] == [":80"]


def test_an_ipv6_device_is_dialled_in_brackets():
    config = caddy_config([Route("a.home.arpa", "fd00::5", 80)], **FILES)
    assert _routes(config)[0]["handle"][0]["upstreams"] == [{"dial": "[fd00::5]:80"}]


def test_the_same_routes_give_the_same_text_whatever_their_order():
    one = [Route("b.home.arpa", "10.0.0.2", 80), Route("a.home.arpa", "10.0.0.1", 80)]
    assert caddy_json(one, **FILES) == caddy_json(list(reversed(one)), **FILES)
    json.loads(caddy_json(one, **FILES))


def test_no_plain_http_server_when_not_asked():
    config = caddy_config([], http_listen=None, **FILES)
    assert list(config["apps"]["http"]["servers"]) == ["front_door"]
    assert len(_routes(config)) == 1


HOSTILE_NAMES = [
    "*.home.arpa",
    "a.home.arpa\n}",
    "a.home.arpa {",
    "a b.home.arpa",
    "$(id).home.arpa",
    "{a}.home.arpa",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=repr)
def test_it_refuses_a_hostile_name(name):
    with pytest.raises(ValueError):
        caddy_config([Route(name, "10.0.0.1", 80)], **FILES)


@pytest.mark.parametrize(
    "address", ["10.0.0.1;id", "10.0.0.1 80", "a/b", "", "10.0.0.1\n", "`id`"], ids=repr
)
def test_it_refuses_a_hostile_device_address(address):
    with pytest.raises(ValueError, match="not an IP address or host name"):
        caddy_config([Route("a.home.arpa", address, 80)], **FILES)


@pytest.mark.parametrize("port", [0, 65536, -1, "80", True, 80.0])
def test_it_refuses_a_port_out_of_range(port):
    with pytest.raises(ValueError, match="number from 1 to 65535"):
        caddy_config([Route("a.home.arpa", "10.0.0.1", port)], **FILES)


@pytest.mark.parametrize(
    "path", ["relative.crt", "/etc/../root/key", "/etc/a b", "/etc/a\n", "/etc/a;id", ""], ids=repr
)
def test_it_refuses_an_odd_file_path(path):
    with pytest.raises(ValueError, match="absolute path"):
        caddy_config([], certificate_path=path, key_path="/etc/k")


@pytest.mark.parametrize("listen", ["443", "0.0.0.0:99999", ":80 ", "a b:80", ":80\n"], ids=repr)
def test_it_refuses_an_odd_listen_address(listen):
    with pytest.raises(ValueError, match="must look like"):
        caddy_config([], https_listen=listen, **FILES)


def test_two_apps_with_one_name_are_refused():
    with pytest.raises(ValueError, match=r"Two apps are named a\.home\.arpa"):
        caddy_config(
            [Route("a.home.arpa", "10.0.0.1", 80), Route("a.home.arpa", "10.0.0.2", 81)], **FILES
        )
