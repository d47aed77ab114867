"""What discovery accepts before it scans anything (no address is contacted here)."""

from __future__ import annotations

import ipaddress

import pytest

from devices.discovery import DiscoveryError, parse_network, suggest_local_cidr
from devices.services import DeviceError


@pytest.mark.parametrize(
    "text",
    ["", "   ", "192.168.1.0/33", "not-a-net", "192.168.1.0/24; rm -rf /", "$(id)", "10.0.0.0/8"],
)
def test_bad_or_huge_networks_are_refused_with_words(text, settings):
    settings.DISCOVERY_MAX_HOSTS = 1024
    with pytest.raises(DiscoveryError) as caught:
        parse_network(text)
    assert isinstance(caught.value, DeviceError)
    assert caught.value.field == "cidr" and caught.value.device_status == "invalid"
    assert "like" in caught.value.message  # every message shows what to enter instead


def test_a_host_address_is_widened_to_its_network():
    assert str(parse_network("192.168.1.37/24")) == "192.168.1.0/24"
    assert str(parse_network("192.168.1.37")) == "192.168.1.37/32"


def test_the_size_limit_is_a_setting(settings):
    settings.DISCOVERY_MAX_HOSTS = 16
    with pytest.raises(DiscoveryError, match="at most 16"):
        parse_network("192.168.1.0/27")
    assert parse_network("192.168.1.0/28").num_addresses == 16


def test_the_suggested_network_is_a_network_or_nothing():
    suggestion = suggest_local_cidr()
    if suggestion:
        network = ipaddress.ip_network(suggestion)
        assert network.num_addresses <= 1024
        assert not network.is_loopback
