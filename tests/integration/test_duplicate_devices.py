"""The same machine cannot be added twice (issue 14, item 6).

A machine is already known when its address and port, or its SSH host key, belong to a
device we have; the wizard says which device it is at "Test connection" and at "Add", and
the API answers 409 with the same words. A duplicate name is caught at "Test connection"
too. The host-key cases use a small real SSH server on 127.0.0.1 (paramiko's server side)
that accepts any login and answers no command, so no lab is needed: the refusal comes
right after the handshake, before any command.
"""

from __future__ import annotations

import io
import json
import socket
import threading

import paramiko
import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import reverse

from devices.keys import generate_key_pair
from devices.models import Device

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-test-password"


class _AcceptAnyLogin(paramiko.ServerInterface):
    def get_allowed_auths(self, username):
        return "password,publickey"

    def check_auth_password(self, username, password):
        return paramiko.AUTH_SUCCESSFUL

    def check_auth_publickey(self, username, key):
        return paramiko.AUTH_SUCCESSFUL


@pytest.fixture
def ssh_server():
    """(port, host key base64) of an SSH server on 127.0.0.1 that lets anyone log in."""
    host_key = paramiko.Ed25519Key.from_private_key(io.StringIO(_generated_ed25519_private_key()))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    transports: list[paramiko.Transport] = []
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            transport = paramiko.Transport(conn)
            transport.add_server_key(host_key)
            transports.append(transport)
            try:
                transport.start_server(server=_AcceptAnyLogin())
            except (paramiko.SSHException, EOFError, OSError):
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1], host_key.get_base64()
    stop.set()
    listener.close()
    for transport in transports:
        transport.close()


def _generated_ed25519_private_key() -> str:
    return generate_key_pair().private_key


def _known(name: str, **fields) -> Device:
    values = dict(
        name=name, address="10.0.0.2", port=22, username="root",
        private_key="not-a-real-key", public_key="ssh-ed25519 AAAA test", status="online",
        host_key_type="ssh-ed25519", host_key="",
    )
    values.update(fields)
    return Device.objects.create(**values)


@pytest.fixture
def signed_in(client):
    client.force_login(get_user_model().objects.create_superuser("owner", password=PASSWORD))
    return client


def _wizard(client, action: str, **fields):
    data = {
        "name": "new-device", "address": "10.0.0.2", "port": "22", "username": "root",
        "password": "device-password", "device_type": "server", "action": action,
    }
    data.update(fields)
    return client.post(reverse("device_add"), data)


@pytest.mark.parametrize("action", ["test", "save"])
def test_the_wizard_refuses_a_known_address_and_port_naming_the_device(signed_in, action):
    _known("lab-pi", address="10.0.0.2", port=22)
    response = _wizard(signed_in, action, address="10.0.0.2", port="22")
    text = response.content.decode()
    assert "This is lab-pi, already added (same address and port)." in text
    assert Device.objects.count() == 1


def test_the_same_address_on_another_port_is_another_device(signed_in):
    _known("lab-pi", address="127.0.0.1", port=22)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    response = _wizard(signed_in, "test", address="127.0.0.1", port=str(port))
    assert "already added" not in response.content.decode()


@pytest.mark.parametrize("action", ["test", "save"])
def test_the_wizard_refuses_a_known_host_key_under_another_address(signed_in, ssh_server, action):
    port, host_key = ssh_server
    _known("lab-server-1", address="192.168.1.50", port=22, host_key=host_key)
    response = _wizard(
        signed_in, action, address="127.0.0.1", port=str(port),
        password="", private_key=_generated_ed25519_private_key(),
    )
    text = response.content.decode()
    assert "This is lab-server-1, already added (same SSH host key" in text, text[:3000]
    assert "copy of the same SD card" in text  # what to do when it really is another machine
    assert Device.objects.count() == 1


def test_a_known_name_is_caught_at_test_connection(signed_in):
    _known("lab-pi", address="10.0.0.9")
    response = _wizard(signed_in, "test", name="Lab-Pi", address="10.0.0.2")
    assert "You already have a device called “Lab-Pi”" in response.content.decode()


def test_the_api_answers_409_naming_the_device(client, capsys):
    get_user_model().objects.create_superuser("admin", password=PASSWORD)
    call_command("issue_api_token", "admin")
    token = capsys.readouterr().out.strip().splitlines()[-1]
    _known("lab-pi", address="10.0.0.2", port=22)
    response = client.post(
        "/api/v1/devices",
        data=json.dumps(
            {"name": "pi-again", "address": "10.0.0.2", "port": 22, "username": "root",
             "password": "device-password"}
        ),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == 409, response.content
    assert response.json()["detail"] == "This is lab-pi, already added (same address and port)."
    assert Device.objects.count() == 1


def test_the_api_answers_409_for_a_known_host_key(client, capsys, ssh_server):
    port, host_key = ssh_server
    get_user_model().objects.create_superuser("admin", password=PASSWORD)
    call_command("issue_api_token", "admin")
    token = capsys.readouterr().out.strip().splitlines()[-1]
    _known("lab-server-1", address="192.168.1.50", host_key=host_key)
    response = client.post(
        "/api/v1/devices",
        data=json.dumps(
            {"name": "server-again", "address": "127.0.0.1", "port": port, "username": "root",
             "private_key": _generated_ed25519_private_key()}
        ),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == 409, response.content
    assert response.json()["detail"].startswith("This is lab-server-1, already added")
