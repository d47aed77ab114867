"""A frozen device (`docker pause`): its port accepts the connection, no SSH greeting comes.

A real TCP server on 127.0.0.1 plays the frozen device: it accepts every connection and
never sends a byte. The product's own connection, wizard check, poll and API must say
"accepted the connection but did not answer" with what to do, within the connect
timeout, and leave no traceback in the log.
"""

from __future__ import annotations

import logging
import socket
import threading
import time

import pytest

from devices import services, ssh
from devices.models import Device, DeviceStatus
from devices.polling import poll_once
from devices.status import status_help

TIMEOUT_SECONDS = 1
WORDS = "accepted the connection but did not answer: it may be overloaded or frozen"


class SilentServer:
    """Listens on 127.0.0.1, accepts, holds every connection open and says nothing."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted.append(conn)

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=2)
        for conn in self.accepted:
            conn.close()
        self.listener.close()


@pytest.fixture
def frozen(settings):
    settings.SSH_CONNECT_TIMEOUT_SECONDS = TIMEOUT_SECONDS
    server = SilentServer()
    yield server
    server.stop()


def _loud_records(caplog) -> list[logging.LogRecord]:
    """Records a person would see in the log (INFO and up) that carry a traceback or come
    from paramiko."""
    time.sleep(0.3)  # paramiko's transport thread logs as it ends
    return [
        r
        for r in caplog.records
        if r.levelno >= logging.INFO
        and (
            "Traceback" in r.getMessage()
            or r.name.startswith(("paramiko", "devices.ssh.handshake"))
        )
    ]


def test_a_silent_port_is_a_frozen_device_not_a_wrong_server(frozen, caplog):
    caplog.set_level(logging.DEBUG)
    target = ssh.Target("127.0.0.1", frozen.port, "pi", name="lab-pi")
    started = time.monotonic()
    with pytest.raises(ssh.Unresponsive) as raised:
        ssh.open_transport(target)
    assert time.monotonic() - started < TIMEOUT_SECONDS + 3
    assert raised.value.message == f"lab-pi {WORDS}."
    assert raised.value.status == "offline" and raised.value.reason == "unresponsive"
    assert "not an SSH server" not in raised.value.message
    assert frozen.accepted, "the silent server never saw the connection"
    assert _loud_records(caplog) == []


def test_the_wizard_check_says_the_device_is_stuck_and_what_to_do(frozen, db, caplog):
    caplog.set_level(logging.DEBUG)
    check = services.device_test_connection(
        address="127.0.0.1", port=frozen.port, username="pi", password="not-used"
    )
    assert not check.ok and check.status == DeviceStatus.OFFLINE
    step = check.steps[0]
    assert step.key == "connect" and not step.ok
    assert f"127.0.0.1 {WORDS}" in step.detail
    fixes = " ".join(step.fixes)
    assert "Wait" in fixes and "hot" in fixes and "restart it" in fixes
    assert "Check the address is correct" not in fixes
    assert _loud_records(caplog) == []


def test_a_poll_of_a_frozen_device_shows_its_own_status_words(frozen, db, caplog):
    caplog.set_level(logging.DEBUG)
    device = Device.objects.create(
        name="lab-pi",
        address="127.0.0.1",
        port=frozen.port,
        username="pi",
        private_key="unused",
        status=DeviceStatus.ONLINE,
    )
    device = poll_once(device.pk, count_misses=False)
    device.refresh_from_db()
    assert device.status == DeviceStatus.OFFLINE
    assert device.status_detail == f"lab-pi {WORDS}."
    words = status_help(device)
    assert words["title"] == "Not answering: overloaded or frozen"
    assert any("restart it" in fix for fix in words["fixes"])
    assert _loud_records(caplog) == []


def test_adding_a_frozen_device_answers_in_plain_words_without_a_field_at_fault(frozen, cast_admin):
    response = cast_admin.client().post(
        "/api/v1/devices",
        {
            "name": "lab-pi",
            "address": "127.0.0.1",
            "port": frozen.port,
            "username": "pi",
            "password": "not-used",
        },
        content_type="application/json",
    )
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["detail"] == f"127.0.0.1 {WORDS}."
    assert body["status"] == DeviceStatus.OFFLINE
    assert not body.get("field")
    assert not Device.objects.filter(name="lab-pi").exists()


def test_a_port_that_closes_at_once_is_not_called_frozen(settings):
    settings.SSH_CONNECT_TIMEOUT_SECONDS = TIMEOUT_SECONDS
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def close_each() -> None:
        conn, _ = listener.accept()
        conn.close()

    thread = threading.Thread(target=close_each, daemon=True)
    thread.start()
    try:
        with pytest.raises(ssh.Unreachable) as raised:
            ssh.open_transport(ssh.Target("127.0.0.1", port, "pi"))
    finally:
        thread.join(timeout=2)
        listener.close()
    assert not isinstance(raised.value, ssh.Unresponsive)
    assert "closed the connection" in raised.value.message
