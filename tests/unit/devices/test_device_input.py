"""Shell metacharacters in any device field are refused before anything reaches a device."""

from __future__ import annotations

import pytest

from devices import services, ssh
from devices.models import Device
from devices.services import DeviceError

METACHARACTERS = [
    "; rm -rf /",
    "$(id)",
    "`id`",
    "a'b",
    'a"b',
    "a\nb",
    "a && b",
    "a | b",
    "a > /tmp/x",
    "a\\b",
    "' OR 1=1 --",
]

VALID = {
    "name": "pi-4",
    "address": "192.0.2.10",  # TEST-NET-1: never reached, validation fails first
    "port": 22,
    "username": "pi",
    "password": "not-used",
    "device_type": "pi",
    "location": "Office",
}


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("validation must fail before any connection")

    monkeypatch.setattr(ssh, "open_transport", refuse)
    monkeypatch.setattr(ssh, "install_key_with_password", refuse)


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["name", "address", "username", "location", "device_type"])
@pytest.mark.parametrize("bad", METACHARACTERS)
def test_device_add_refuses_metacharacters_in_every_field(field, bad):
    with pytest.raises(DeviceError) as caught:
        services.device_add(**{**VALID, field: f"ok{bad}"})
    assert caught.value.device_status == "invalid"
    assert caught.value.field == field
    assert caught.value.message
    assert Device.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("port", ["22; rm -rf /", "$(id)", "0", "65536", "-1", "", None])
def test_device_add_refuses_bad_ports(port):
    with pytest.raises(DeviceError) as caught:
        services.device_add(**{**VALID, "port": port})
    assert caught.value.field == "port"


@pytest.mark.django_db
@pytest.mark.parametrize("bad", METACHARACTERS)
def test_a_private_key_with_metacharacters_is_refused_as_a_key(bad):
    with pytest.raises(DeviceError) as caught:
        services.device_add(
            **{
                **VALID,
                "password": None,
                "private_key": f"-----BEGIN OPENSSH PRIVATE KEY-----\n{bad}\n",
            }
        )
    assert caught.value.field == "private_key"
    assert bad not in caught.value.message


@pytest.mark.django_db
def test_device_add_needs_a_password_or_a_key():
    with pytest.raises(DeviceError) as caught:
        services.device_add(**{**VALID, "password": None})
    assert caught.value.field == "password"


@pytest.mark.django_db
def test_device_add_refuses_a_name_already_taken():
    Device.objects.create(
        name="pi-4", address="192.0.2.11", username="pi", private_key="x", public_key="y"
    )
    with pytest.raises(DeviceError) as caught:
        services.device_add(**VALID)
    assert caught.value.field == "name" and caught.value.device_status == "conflict"


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["name", "address", "username", "location"])
def test_device_update_refuses_metacharacters(field):
    device = Device.objects.create(
        name="pi-4", address="192.0.2.11", username="pi", private_key="x", public_key="y"
    )
    with pytest.raises(DeviceError) as caught:
        services.device_update(device=device, **{field: "x; rm -rf /"})
    assert caught.value.field == field
    device.refresh_from_db()
    assert device.name == "pi-4" and device.address == "192.0.2.11"


@pytest.mark.django_db
def test_device_update_refuses_fields_that_are_not_editable():
    device = Device.objects.create(
        name="pi-4", address="192.0.2.11", username="pi", private_key="x", public_key="y"
    )
    with pytest.raises(DeviceError) as caught:
        services.device_update(device=device, host_key="AAAA")
    assert caught.value.field == "host_key"


def test_every_command_argument_is_quoted():
    command = ssh.quote_command(["sh", "-c", "echo hi", "sh", "$(id); rm -rf / `x` 'q'"])
    assert command == "sh -c 'echo hi' sh '$(id); rm -rf / `x` '\"'\"'q'\"'\"''"
    with pytest.raises(ValueError):
        ssh.quote_command([])
