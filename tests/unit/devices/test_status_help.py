"""Every status has words for a person and, when something is wrong, what to do."""

from __future__ import annotations

import pytest

from devices.models import Device, DeviceStatus
from devices.status import status_help


def _device(status: str, **kw) -> Device:
    return Device(
        name="pi-4", address="192.168.1.20", port=2222, username="pi", status=status, **kw
    )


@pytest.mark.parametrize("status", DeviceStatus.values)
def test_every_status_has_a_title_and_a_message(status):
    words = status_help(_device(status))
    assert words["title"] and words["message"]
    assert isinstance(words["fixes"], list)
    if status != DeviceStatus.ONLINE:
        assert words["fixes"], f"{status} needs at least one fix"


def test_offline_names_the_address_and_the_port():
    words = status_help(_device(DeviceStatus.OFFLINE))
    assert words["title"] == "Can't connect to device"
    text = " ".join(words["fixes"])
    assert "Is the device powered on" in text
    assert "currently: 192.168.1.20" in text
    assert "port 2222" in text


def test_auth_failed_names_the_user_and_keeps_the_detail():
    words = status_help(
        _device(DeviceStatus.AUTH_FAILED, status_detail="The device refused the login as pi.")
    )
    assert words["message"] == "The device refused the login as pi."
    assert any("currently: pi" in fix for fix in words["fixes"])


def test_host_key_changed_shows_both_fingerprints():
    device = _device(
        DeviceStatus.HOST_KEY_CHANGED,
        host_key_type="ssh-ed25519",
        host_key="AAAAC3NzaC1lZDI1NTE5AAAAIL28gKL7BnSOHR8My/9WBMVgm1T3oc+t0/L+0UE4VPc4",
        offered_host_key_type="ssh-ed25519",
        offered_host_key="AAAAC3NzaC1lZDI1NTE5AAAAIFFqbIYBrp8z7ns6n2PZ2Yt6iOiUD3ICv+WHJrRZbA7u",
    )
    words = status_help(device)
    assert "SHA256:jswHhplBuZn89ogkcH6SkjgDuZXoOhGffC+c7Mr1gLY" in words["message"]
    assert words["message"].count("SHA256:") == 2
    assert any("accept" in fix for fix in words["fixes"])


def test_docker_missing_tells_a_non_root_user_how_to_get_docker_access():
    words = status_help(_device(DeviceStatus.DOCKER_MISSING))
    text = " ".join(words["fixes"])
    assert "apt-get install docker.io" in text
    assert "usermod -aG docker pi" in text


def test_a_device_that_accepts_but_does_not_answer_is_called_frozen_with_what_to_do():
    detail = "pi-4 accepted the connection but did not answer: it may be overloaded or frozen."
    words = status_help(_device(DeviceStatus.OFFLINE, status_detail=detail))
    assert words["title"] == "Not answering: overloaded or frozen"
    assert words["message"] == detail
    text = " ".join(words["fixes"])
    assert "Wait" in text and "hot" in text and "power" in text and "restart it" in text
    assert "Check the address" not in text
