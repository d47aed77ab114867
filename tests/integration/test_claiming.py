"""Nobody claims a fresh install but the person who started it (issue 13, findings 1, 2, 5).

Real components: Django's test client, the ASGI application with channels' communicator,
threads on the file SQLite database, `manage.py setup_link` as a process.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client

from homelab import setup_token
from homelab.hosts import own_hosts

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "sup3r-Secret-pw"


def _account(name: str) -> dict:
    return {"username": name, "password1": PASSWORD, "password2": PASSWORD}


# --- Finding 1 (a): allowed hosts ------------------------------------------------------


def test_default_allowed_hosts_are_the_machines_own_names_and_never_everything():
    hosts = own_hosts()
    assert "*" not in hosts
    for name in ("localhost", "127.0.0.1", "[::1]"):
        assert name in hosts
    import socket

    assert socket.gethostname().lower() in hosts
    assert "*" not in settings.ALLOWED_HOSTS


def test_allowed_hosts_from_the_environment_are_added_to_the_own_names(tmp_path):
    env = {
        **os.environ,
        "HOMELAB_DATA_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "homelab.settings",
        "HOMELAB_ALLOWED_HOSTS": "homelab.example.net, 10.1.2.3",
    }
    code = "from django.conf import settings; print(','.join(settings.ALLOWED_HOSTS))"
    out = (
        subprocess.run(
            [sys.executable, "-c", f"import django; django.setup(); {code}"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        .stdout.strip()
        .split(",")
    )
    assert "homelab.example.net" in out and "10.1.2.3" in out
    assert "localhost" in out and "127.0.0.1" in out


@pytest.mark.django_db
def test_a_rebinding_host_is_refused_on_the_setup_page(client):
    response = client.get("/setup/", HTTP_HOST="rebind.attacker.example:9300")
    assert response.status_code == 400


# --- Finding 1 (b): the one-time setup link -----------------------------------------------


@pytest.mark.django_db
def test_setup_refuses_without_the_token_and_says_where_the_link_is(client, django_user_model):
    setup_token.ensure()
    response = client.get("/setup/")
    assert response.status_code == 403
    assert "the link <code>serve</code> printed in its terminal" in response.text
    assert 'name="password1"' not in response.text
    response = client.post("/setup/", _account("mallory"))
    assert response.status_code == 403
    response = client.post("/setup/?token=wrong", {**_account("mallory"), "token": "wrong"})
    assert response.status_code == 403
    assert not django_user_model.objects.exists()


@pytest.mark.django_db
def test_the_token_opens_setup_once_and_dies_with_the_first_account(client, django_user_model):
    token = setup_token.ensure()
    path = Path(settings.DATA_DIR) / "setup-token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert setup_token.ensure() == token  # stable until used
    page = client.get(f"/setup/?token={token}")
    assert page.status_code == 200 and 'name="password1"' in page.text
    # The token travels with the form's POST in a hidden field.
    assert f'name="token" value="{token}"' in page.text
    response = client.post("/setup/", {**_account("alice"), "token": token})
    assert response.status_code == 302
    assert django_user_model.objects.get().username == "alice"
    assert not path.exists()
    assert not setup_token.is_valid(token)
    other = Client()
    response = other.post("/setup/", {**_account("mallory"), "token": token})
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert list(django_user_model.objects.values_list("username", flat=True)) == ["alice"]


def test_setup_link_command_prints_the_path_then_nothing_once_an_account_exists(tmp_path):
    env = {
        **os.environ,
        "HOMELAB_DATA_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "homelab.settings",
    }
    env.pop("HOMELAB_DATABASE_URL", None)

    def manage(*args) -> str:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout

    manage("migrate", "--noinput")
    first = manage("setup_link").splitlines()
    assert len(first) == 1 and first[0].startswith("/setup/?token=")
    assert manage("setup_link").splitlines() == first  # the same link until it is used
    token = first[0].split("=", 1)[1]
    assert (tmp_path / "setup-token").read_text().strip() == token
    assert stat.S_IMODE((tmp_path / "setup-token").stat().st_mode) == 0o600
    env_user = {**env, "DJANGO_SUPERUSER_PASSWORD": PASSWORD}
    subprocess.run(
        [
            sys.executable,
            "manage.py",
            "createsuperuser",
            "--noinput",
            "--username",
            "admin",
            "--email",
            "admin@example.net",
        ],
        cwd=ROOT,
        env=env_user,
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert manage("setup_link") == ""
    assert not (tmp_path / "setup-token").exists()


# --- Finding 1 (c): one admin from simultaneous posts ---------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_first_run_posts_make_one_admin():
    from django.db import connection

    token = setup_token.ensure()
    barrier = threading.Barrier(2)
    answers: list[int] = []

    def post(name: str) -> None:
        try:
            client = Client()
            barrier.wait(timeout=10)
            answers.append(client.post("/setup/", {**_account(name), "token": token}).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=post, args=(name,)) for name in ("alice", "bob")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert answers == [302, 302]
    assert get_user_model().objects.count() == 1


@pytest.mark.django_db
def test_the_claim_row_refuses_a_second_first_admin_even_when_no_account_is_seen_yet(client):
    """The guard does not depend on the database's isolation: with the claim already taken
    (another post in flight), a post that sees no account still makes none."""
    from homelab.models import FirstRunClaim

    token = setup_token.ensure()
    FirstRunClaim.objects.create()
    response = client.post("/setup/", {**_account("bob"), "token": token})
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert not get_user_model().objects.exists()


# --- Finding 2: the task queue's admin pages run nothing ----------------------------------


@pytest.mark.django_db
def test_no_admin_page_lets_a_person_schedule_a_python_callable(
    client, django_user_model, tmp_path
):
    from django_q.models import Schedule

    admin = django_user_model.objects.create_superuser("root", password=PASSWORD)
    client.force_login(admin)
    assert client.get("/admin/django_q/schedule/add/").status_code in (403, 404)
    pwned = tmp_path / "pwned.txt"
    response = client.post(
        "/admin/django_q/schedule/add/",
        {
            "name": "x",
            "func": "os.system",
            "args": f"'id > {pwned}'",
            "schedule_type": "O",
            "repeats": "-1",
            "next_run_0": "2030-01-01",
            "next_run_1": "00:00:00",
        },
    )
    assert response.status_code in (403, 404)
    assert not Schedule.objects.exists()
    schedule = Schedule.objects.create(
        name="poll", func="devices.tasks.poll_all", schedule_type="I", minutes=1
    )
    change = client.post(
        f"/admin/django_q/schedule/{schedule.pk}/change/", {"func": "os.system", "name": "x"}
    )
    assert change.status_code in (200, 403)
    schedule.refresh_from_db()
    assert schedule.func == "devices.tasks.poll_all"
    for model in ("schedule", "success", "failure", "ormq"):
        listing = client.get(f"/admin/django_q/{model}/")
        assert listing.status_code == 200, model
        assert 'name="action"' not in listing.text, model  # no "resubmit" or "delete" actions
        assert client.get(f"/admin/django_q/{model}/add/").status_code in (403, 404), model


# --- Finding 5: WebSocket origins ------------------------------------------------------------


async def _handshake(user, origin: str | None) -> bool:
    from channels.testing import WebsocketCommunicator

    from homelab.asgi import application

    headers = [(b"host", b"localhost")]
    if origin:
        headers.append((b"origin", origin.encode()))
    communicator = WebsocketCommunicator(application, "/ws/dashboard/", headers=headers)
    communicator.scope["user"] = user
    connected, _ = await communicator.connect(timeout=10)
    await communicator.disconnect()
    return connected


@pytest.mark.django_db(transaction=True)
def test_a_websocket_from_another_origin_is_refused_and_our_own_works(settings):
    from asgiref.sync import async_to_sync

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "*"]  # even a person's "*" does not open it
    user = get_user_model().objects.create_superuser("owner", password=PASSWORD)
    assert async_to_sync(_handshake)(user, "http://evil.example") is False
    assert async_to_sync(_handshake)(user, None) is False
    assert async_to_sync(_handshake)(user, "http://localhost:8080") is True
