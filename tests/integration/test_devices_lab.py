"""Devices against the lab's real machines: onboarding, identity, polling, discovery, totals.

Nothing here mocks SSH or Docker: every device is a lab container with its own sshd and
dockerd. The only addresses touched are the lab's own (its bridge network).
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from pathlib import Path

import pytest
from django.db import connection

from devices import services, ssh
from devices.discovery import discovery_scan
from devices.models import Device, DeviceMetric, DeviceStatus
from devices.selectors import resources_summary
from devices.services import DeviceError

GiB = 1024**3

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _fresh_connections(settings):
    # A stopped device must be noticed quickly; the defaults are meant for real networks.
    settings.SSH_CONNECT_TIMEOUT_SECONDS = 4
    ssh.connections.close_all()
    yield
    ssh.connections.close_all()


def _add(lab, name: str, *, device_name: str | None = None, **kw) -> Device:
    dev = lab.device(name)
    return services.device_add(
        name=device_name or name,
        address=dev.address,
        port=dev.port,
        username=dev.username,
        password=kw.pop("password", dev.password),
        **kw,
    )


def _authorized_keys(lab, name: str) -> str:
    return lab.exec(name, ["sh", "-c", "cat /root/.ssh/authorized_keys 2>/dev/null || true"]).stdout


def _database_bytes() -> bytes:
    path = Path(connection.settings_dict["NAME"])
    assert path.exists(), "the tests must use a file database (tests/settings.py)"
    return b"".join(
        p.read_bytes() for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()
    )


def _remove_quietly(device: Device) -> None:
    with contextlib.suppress(Device.DoesNotExist):
        services.device_remove(device=Device.objects.get(pk=device.pk))


def test_password_onboarding_installs_our_key_and_stores_the_password_nowhere(lab, caplog):
    caplog.set_level(logging.DEBUG)
    dev = lab.device("lab-server-1")
    device = _add(lab, "lab-server-1", device_type="server", location="Rack 1")
    try:
        assert device.status == DeviceStatus.ONLINE, device.status_detail
        assert device.public_key.startswith("ssh-ed25519 ")
        keys = _authorized_keys(lab, "lab-server-1").splitlines()
        assert keys.count(device.public_key) == 1

        # Onboarding again with the same key changes nothing on the device (idempotent).
        transport, _ = ssh.install_key_with_password(
            ssh.Target(
                dev.address,
                dev.port,
                dev.username,
                host_key_type=device.host_key_type,
                host_key=device.host_key,
            ),
            password=dev.password,
            public_key=device.public_key,
        )
        transport.close()
        assert _authorized_keys(lab, "lab-server-1").splitlines().count(device.public_key) == 1

        # The stored key logs in by itself.
        status, out, _ = ssh.run(Device.objects.get(pk=device.pk), ["echo", "key works"])
        assert (status, out.strip()) == (0, "key works")

        stored = _database_bytes()
        assert dev.password.encode() not in stored
        body = "".join(device.private_key.strip().splitlines()[1:-1])
        assert body[:40].encode() not in stored, "the private key must be encrypted at rest"
        assert device.public_key.split()[1].encode() in stored  # the search itself works
        assert dev.password not in caplog.text
        assert dev.password not in repr(device.__dict__)
    finally:
        _remove_quietly(device)
    assert device.public_key not in _authorized_keys(lab, "lab-server-1"), (
        "remove takes our key off"
    )


def test_metacharacters_in_a_password_are_harmless(lab):
    nasty = 'p\'; touch /tmp/pwned #$(touch /tmp/pwned2)`touch /tmp/pwned3` && echo "x" | cat'
    lab.set_password("lab-server-2", nasty)
    device = _add(lab, "lab-server-2", password=nasty)
    try:
        assert device.status == DeviceStatus.ONLINE
        leftovers = lab.exec(
            "lab-server-2", ["sh", "-c", "ls /tmp/pwned* 2>/dev/null || true"]
        ).stdout
        assert leftovers.strip() == ""
        assert nasty.encode() not in _database_bytes()
    finally:
        _remove_quietly(device)


def test_a_wrong_password_gives_auth_failed_with_its_message_and_saves_nothing(lab):
    wrong = f"wrong-{uuid.uuid4().hex}"
    with pytest.raises(DeviceError) as caught:
        _add(lab, "lab-pi", password=wrong)
    error = caught.value
    assert error.device_status == DeviceStatus.AUTH_FAILED
    assert "refused the login as root" in error.message
    assert error.fixes and error.field == "password"
    assert wrong not in error.message and wrong not in " ".join(error.fixes)
    assert Device.objects.count() == 0
    assert wrong.encode() not in _database_bytes()


def test_an_address_where_nothing_listens_is_unreachable_with_the_fix(lab):
    dev = lab.device("lab-pi")
    with pytest.raises(DeviceError) as caught:
        services.device_add(
            name="nobody", address=dev.address, port=2, username="root", password=dev.password
        )
    assert caught.value.device_status == DeviceStatus.OFFLINE
    assert "refused" in caught.value.message
    assert any("port 2" in fix for fix in caught.value.fixes)
    assert Device.objects.count() == 0


def test_the_2_gib_device_reports_2_gib_and_1_cpu(lab):
    device = _add(lab, "lab-pi", device_type="pi")
    try:
        expected = lab.device("lab-pi").memory_bytes
        assert abs(device.ram_total_bytes - expected) <= 0.05 * expected
        assert 0 < device.ram_used_bytes < device.ram_total_bytes
        assert device.cpu_cores == 1.0
        assert device.storage_total_bytes > device.storage_used_bytes > 0
        assert device.docker_root_dir == "/var/lib/docker"
        assert device.compose_command == "docker compose" and device.compose_version
        assert device.docker_version and device.arch and device.os_name.startswith("Debian")
        assert device.uptime_seconds is not None and device.load_1m is not None
        assert device.cpu_usage_percent is not None and 0 <= device.cpu_usage_percent <= 100
        assert DeviceMetric.objects.filter(device=device, online=True).count() == 1
    finally:
        _remove_quietly(device)


def test_polls_reuse_one_connection(lab):
    device = _add(lab, "lab-server-1")
    try:
        target = ssh.Target.from_device(device)
        transport = ssh.connections.transport(target)
        for _ in range(3):
            polled = services.device_poll(device_id=device.pk)
            assert polled.status == DeviceStatus.ONLINE
        assert ssh.connections.transport(ssh.Target.from_device(polled)) is transport
        assert ssh.connections.connects(device.pk) == 0  # the add's own connection was kept
        assert DeviceMetric.objects.filter(device=device, online=True).count() == 4
    finally:
        _remove_quietly(device)


def _kept_shells(lab, name: str) -> list[str]:
    """Process ids of the kept shells (`sh` started by an SSH session) on a lab device."""
    out = lab.exec(name, ["ps", "-eo", "pid=,ppid=,args="]).stdout
    rows = [line.split(None, 2) for line in out.splitlines() if line.strip()]
    sshd = {pid for pid, _ppid, *args in rows if args and args[0].startswith("sshd: root@")}
    return [pid for pid, ppid, *args in rows if args == ["sh"] and ppid in sshd]


def test_polls_run_in_one_kept_shell_and_a_killed_one_is_replaced(lab):
    device = _add(lab, "lab-server-1")
    try:
        services.device_poll(device_id=device.pk)
        shells = _kept_shells(lab, "lab-server-1")
        assert len(shells) == 1
        for _ in range(3):
            assert services.device_poll(device_id=device.pk).status == DeviceStatus.ONLINE
        assert _kept_shells(lab, "lab-server-1") == shells  # the same process every time

        lab.exec("lab-server-1", ["kill", "-9", shells[0]])
        polled = services.device_poll(device_id=device.pk)
        assert polled.status == DeviceStatus.ONLINE and polled.missed_polls == 0
        replaced = _kept_shells(lab, "lab-server-1")
        assert len(replaced) == 1 and replaced != shells
        assert ssh.connections.connects(device.pk) == 0  # a new shell, not a new connection
    finally:
        _remove_quietly(device)
    # Removing the device closes the connection, and its shell ends with it.
    deadline = time.monotonic() + 10
    while _kept_shells(lab, "lab-server-1") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _kept_shells(lab, "lab-server-1") == []


def test_a_replaced_host_key_gives_host_key_changed_and_nothing_runs(lab):
    device = _add(lab, "lab-server-2")
    try:
        pinned = device.host_key
        lab.replace_host_key("lab-server-2")
        new_key = lab.host_keys("lab-server-2")[device.host_key_type]
        # An established session stays with the machine it authenticated; a reinstalled
        # device drops it. Drop it on the device side, so the next poll has to reconnect.
        lab.exec("lab-server-2", ["sh", "-c", "pkill -f 'sshd: root' || true"])
        marker = f"/tmp/marker-{uuid.uuid4().hex}"

        polled = services.device_poll(device_id=device.pk)
        assert polled.status == DeviceStatus.HOST_KEY_CHANGED
        assert polled.host_key == pinned
        assert polled.offered_host_key == new_key
        assert ssh.fingerprint(new_key) in polled.status_detail
        assert ssh.fingerprint(pinned) in polled.status_detail

        # Nothing runs: neither through the device's guard nor on a fresh connection.
        with pytest.raises(ssh.HostKeyChanged):
            ssh.run(polled, ["touch", marker])
        with pytest.raises(ssh.HostKeyChanged) as caught:
            ssh.connections.run(ssh.Target.from_device(polled), ["touch", marker])
        assert caught.value.old_fingerprint == ssh.fingerprint(pinned)
        assert caught.value.new_fingerprint == ssh.fingerprint(new_key)
        assert lab.exec("lab-server-2", ["test", "-e", marker]).returncode != 0

        # While changed, polling leaves it alone (no new metric rows, nothing recorded).
        rows = DeviceMetric.objects.filter(device=device).count()
        assert services.device_poll(device_id=device.pk).status == DeviceStatus.HOST_KEY_CHANGED
        assert services.devices_poll_all() == 0
        assert DeviceMetric.objects.filter(device=device).count() == rows

        accepted = services.device_accept_host_key(device=polled, fingerprint=caught.value.new_fingerprint)
        assert accepted.status == DeviceStatus.ONLINE
        assert accepted.host_key == new_key and accepted.offered_host_key == ""
    finally:
        _remove_quietly(device)


def test_a_stopped_device_goes_offline_within_two_polls_and_comes_back(lab):
    device = _add(lab, "lab-pi")
    try:
        ram_before = device.ram_total_bytes
        lab.stop_device("lab-pi")
        first = services.device_poll(device_id=device.pk)
        assert first.status == DeviceStatus.ONLINE and first.missed_polls == 1
        second = services.device_poll(device_id=device.pk)
        assert second.status == DeviceStatus.OFFLINE and second.missed_polls == 2
        assert second.ram_total_bytes == ram_before  # last figures kept, shown as stale
        assert second.last_seen == first.last_seen
        assert DeviceMetric.objects.filter(device=device, online=False).count() == 2
        assert resources_summary()["devices_offline"] == 1

        lab.start_device("lab-pi")
        back = services.device_poll(device_id=device.pk)
        assert back.status == DeviceStatus.ONLINE and back.missed_polls == 0
        assert back.last_seen > second.last_seen
    finally:
        _remove_quietly(device)


def test_discovery_over_the_lab_network_finds_exactly_the_lab_devices(lab):
    pi = lab.device("lab-pi")
    Device.objects.create(
        name="known-pi",
        address=pi.address,
        port=22,
        username="root",
        private_key="x",
        public_key="y",
    )
    started = time.monotonic()
    candidates = discovery_scan(cidr=lab.network_cidr)
    took = time.monotonic() - started
    expected = {row["device"].address for row in lab.status() if row["state"] == "running"}
    assert {c.address for c in candidates} == expected
    assert all(c.banner.startswith("SSH-2.0-") for c in candidates)
    marked = {c.address: c for c in candidates}
    assert marked[pi.address].already_added and marked[pi.address].device_name == "known-pi"
    assert not any(c.already_added for c in candidates if c.address != pi.address)
    assert took < 30


def test_the_aggregate_equals_the_sum_of_the_online_devices(lab):
    added = [_add(lab, name) for name in ("lab-pi", "lab-server-1", "lab-server-2")]
    Device.objects.create(
        name="away",
        address="192.0.2.50",
        username="root",
        private_key="x",
        public_key="y",
        status=DeviceStatus.OFFLINE,
        ram_total_bytes=64 * GiB,
        ram_used_bytes=GiB,
        storage_total_bytes=10**12,
        cpu_cores=16,
    )
    try:
        summary = resources_summary()
        online = list(Device.objects.filter(status=DeviceStatus.ONLINE))
        assert len(online) == 3
        assert summary["devices_online"] == 3 and summary["devices_offline"] == 1
        for key in (
            "ram_total_bytes",
            "ram_used_bytes",
            "storage_total_bytes",
            "storage_used_bytes",
        ):
            assert summary[key] == sum(getattr(d, key) for d in online), key
        assert summary["cpu_cores_total"] == sum(d.cpu_cores for d in online) == 5.0
        expected_ram = sum(
            lab.device(n).memory_bytes for n in ("lab-pi", "lab-server-1", "lab-server-2")
        )
        assert abs(summary["ram_total_bytes"] - expected_ram) <= 0.05 * expected_ram
    finally:
        for device in added:
            _remove_quietly(device)


def test_a_device_without_docker_is_added_as_docker_missing_with_the_fix(
    lab, lab_device_without_docker
):
    dev = lab_device_without_docker
    check = services.device_test_connection(
        address=dev.address, port=dev.port, username=dev.username, password=dev.password
    )
    assert not check.ok and check.status == DeviceStatus.DOCKER_MISSING
    steps = {s.key: s for s in check.steps}
    assert steps["connect"].ok and steps["login"].ok
    assert not steps["docker"].ok and steps["docker"].fixes
    assert Device.objects.count() == 0, "a connection test saves nothing"

    device = services.device_add(
        name="nodocker",
        address=dev.address,
        port=dev.port,
        username=dev.username,
        password=dev.password,
    )
    try:
        assert device.status == DeviceStatus.DOCKER_MISSING
        assert "not installed" in device.status_detail
        assert device.ram_total_bytes  # still reports what it can
        polled = services.device_poll(device_id=device.pk)
        assert polled.status == DeviceStatus.DOCKER_MISSING
    finally:
        _remove_quietly(device)


def test_the_connection_test_lists_every_requirement(lab):
    dev = lab.device("lab-server-2")
    check = services.device_test_connection(
        address=dev.address, port=dev.port, username=dev.username, password=dev.password
    )
    assert check.ok and check.status == DeviceStatus.ONLINE
    assert [s.key for s in check.steps] == [
        "connect",
        "login",
        "docker",
        "compose",
        "arch",
        "os",
        "disk",
    ]
    assert check.host_key_fingerprint.startswith("SHA256:")
    assert check.facts["ram_total_bytes"] == pytest.approx(dev.memory_bytes, rel=0.05)
    assert Device.objects.count() == 0
    assert all(dev.password not in s.detail for s in check.steps)


def test_editing_the_login_installs_a_new_key_and_removes_the_old_one(lab):
    device = _add(lab, "lab-server-1")
    try:
        old_key = device.public_key
        updated = services.device_update(
            device=device, password=lab.device("lab-server-1").password, location="Shelf 2"
        )
        assert updated.status == DeviceStatus.ONLINE
        assert updated.public_key != old_key and updated.location == "Shelf 2"
        keys = _authorized_keys(lab, "lab-server-1")
        assert updated.public_key in keys and old_key not in keys
    finally:
        _remove_quietly(device)


def test_docker_py_talks_over_the_devices_one_connection(lab):
    device = _add(lab, "lab-server-1")
    try:
        transport = ssh.connections.transport(ssh.Target.from_device(device))
        client = ssh.docker_client(device)
        assert client.info()["ServerVersion"] == device.docker_version
        assert isinstance(client.containers.list(all=True), list)
        assert ssh.docker_client(device) is client  # kept for the next poll
        assert ssh.connections.transport(ssh.Target.from_device(device)) is transport
        assert ssh.connections.connects(device.pk) == 0
        # The next polls take Docker's figures from the API over that same connection.
        polled = services.device_poll(device_id=device.pk)
        assert polled.status == DeviceStatus.ONLINE
        assert polled.docker_version == device.docker_version
        assert polled.compose_command == "docker compose"
        assert polled.storage_total_bytes == device.storage_total_bytes
    finally:
        _remove_quietly(device)


def test_a_pasted_private_key_replaces_ours_and_stays_on_the_device(lab):
    device = _add(lab, "lab-server-2")
    own = ssh.generate_key_pair(comment="person@laptop")
    own_line = own.public_key
    lab.exec(
        "lab-server-2",
        ["sh", "-c", 'printf "%s\\n" "$1" >> /root/.ssh/authorized_keys', "sh", own_line],
    )
    try:
        ours = device.public_key
        updated = services.device_update(device=device, private_key=own.private_key)
        assert updated.status == DeviceStatus.ONLINE
        keys = _authorized_keys(lab, "lab-server-2")
        assert ours not in keys and own_line in keys
        services.device_remove(device=updated)
        assert own_line in _authorized_keys(lab, "lab-server-2"), "the person's own key stays"
    finally:
        _remove_quietly(device)
        lab.exec(
            "lab-server-2",
            [
                "sh",
                "-c",
                'grep -vxF -- "$1" /root/.ssh/authorized_keys > /tmp/ak; cat /tmp/ak > /root/.ssh/authorized_keys',
                "sh",
                own_line,
            ],
        )
