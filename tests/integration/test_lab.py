"""Tests of the device lab itself: the devices are real machines for the other tests."""

from __future__ import annotations

import io
import ipaddress
import shlex
import socket
import time

import paramiko
import pytest

from tests.lab import DEVICE_SPECS, Lab

pytestmark = pytest.mark.lab

DEVICE_NAMES = [s.name for s in DEVICE_SPECS]


def ssh(dev, password: str | None = None, timeout: float = 10) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    # the lab's own devices on its own bridge: their keys change with every rebuild
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(
        dev.address,
        port=dev.port,
        username=dev.username,
        password=password if password is not None else dev.password,
        timeout=timeout,
        allow_agent=False,
        look_for_keys=False,
    )
    return client


def run(client: paramiko.SSHClient, cmd: str, timeout: float = 60) -> tuple[int, str, str]:
    _, out, err = client.exec_command(cmd, timeout=timeout)
    rc = out.channel.recv_exit_status()
    return rc, out.read().decode(), err.read().decode()


def server_host_key(dev) -> str:
    t = paramiko.Transport((dev.address, dev.port))
    try:
        t.start_client(timeout=10)
        return t.get_remote_server_key().get_base64()
    finally:
        t.close()


def test_devices_have_distinct_addresses_in_the_lab_network(lab: Lab):
    net = ipaddress.ip_network(lab.network_cidr)
    addrs = [d.address for d in lab.devices]
    assert len(set(addrs)) == 3
    assert all(ipaddress.ip_address(a) in net for a in addrs)
    assert ipaddress.ip_address(lab.gateway) in net
    assert [d.name for d in lab.devices] == DEVICE_NAMES
    assert lab.device("lab-pi").memory_bytes == 2 * 1024**3


@pytest.mark.parametrize("name", DEVICE_NAMES)
def test_device_answers_ssh_with_password(lab: Lab, name: str):
    dev = lab.device(name)
    spec = next(s for s in DEVICE_SPECS if s.name == name)
    with ssh(dev) as client:
        rc, out, _ = run(client, "id -u; hostname")
    assert rc == 0
    assert out.split() == ["0", spec.hostname]


@pytest.mark.parametrize("name", DEVICE_NAMES)
def test_limits_visible_at_the_cgroup_root(lab: Lab, name: str):
    dev = lab.device(name)
    with ssh(dev) as client:
        rc, out, _ = run(
            client,
            "cat /sys/fs/cgroup/memory/memory.limit_in_bytes "
            "/sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us",
        )
    assert rc == 0
    limit, quota, period = (int(x) for x in out.split())
    assert limit == dev.memory_bytes
    assert quota / period == pytest.approx(dev.cpus)


def test_lab_pi_has_2_gib(lab: Lab):
    res = lab.exec("lab-pi", ["cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"])
    assert res.stdout.strip() == "2147483648"


@pytest.mark.parametrize("name", DEVICE_NAMES)
def test_docker_engine_inside_each_device(lab: Lab, name: str):
    res = lab.exec(
        name, ["docker", "info", "--format", "{{json .RegistryConfig.Mirrors}} {{.ServerVersion}}"]
    )
    assert res.returncode == 0, res.stderr
    mirrors, version = res.stdout.split()
    assert f"http://{lab.registry_address}/" in mirrors
    assert version.startswith("20.10")


def test_docker_over_ssh_and_compose_v2(lab: Lab):
    with ssh(lab.device("lab-server-1")) as client:
        rc, out, err = run(
            client, "docker compose version --short; docker version --format '{{.Server.Version}}'"
        )
    assert rc == 0, err
    compose, engine = out.split()
    assert compose.startswith("2."), compose
    assert engine.startswith("20.10")


def test_busybox_from_the_mirror_runs_inside_a_device(lab: Lab):
    name = "lab-server-2"
    lab.exec(name, ["docker", "rmi", "-f", "busybox:1.36"])
    pull = lab.exec(name, ["docker", "pull", "busybox:1.36"])
    assert pull.returncode == 0, pull.stderr
    res = lab.exec(
        name,
        [
            "docker",
            "run",
            "--rm",
            "busybox:1.36",
            "sh",
            "-c",
            "head -c 104857600 /dev/zero | tail | wc -c",
        ],
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "104857600"


def test_compose_project_starts_inside_a_device(lab: Lab):
    name = "lab-pi"
    compose = "services:\n  probe:\n    image: busybox:1.36\n    command: sleep 300\n"
    script = (
        "set -e; d=$(mktemp -d); cd $d; "
        f"printf %s {shlex.quote(compose)} > compose.yaml; "
        "docker compose -p labprobe up -d --quiet-pull >/dev/null 2>&1; "
        "docker compose -p labprobe ps --format '{{.Service}} {{.State}}'; "
        "docker compose -p labprobe down -t 1 >/dev/null 2>&1; rm -rf $d"
    )
    res = lab.exec(name, ["sh", "-c", script])
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["probe", "running"]


def test_pushed_image_is_pullable_under_its_real_name(lab: Lab):
    from tests.lab import build

    lab.push_image(build.busybox_image(), "homelab-lab-test/probe:1")
    res = lab.exec(
        "lab-server-1",
        [
            "sh",
            "-c",
            (
                "docker pull -q homelab-lab-test/probe:1 >/dev/null && "
                "docker run --rm homelab-lab-test/probe:1 echo ok; "
                "docker rmi -f homelab-lab-test/probe:1 >/dev/null"
            ),
        ],
    )
    assert res.stdout.strip() == "ok", res.stderr


def test_a_missing_image_fails_fast_without_the_internet(lab: Lab):
    t0 = time.monotonic()
    res = lab.exec("lab-pi", ["docker", "pull", "homelab-lab-test/does-not-exist:1"], timeout=60)
    assert res.returncode != 0
    assert time.monotonic() - t0 < 30


def test_stop_and_start_a_device(lab: Lab):
    dev = lab.device("lab-server-1")
    lab.stop_device(dev.name)
    assert not lab.is_device_running(dev.name)
    with pytest.raises(OSError):
        socket.create_connection((dev.address, dev.port), timeout=2).close()
    lab.start_device(dev.name)
    assert lab.is_device_running(dev.name)
    with ssh(dev) as client:
        rc, out, _ = run(client, "docker info --format '{{.ServerVersion}}'")
    assert rc == 0 and out.strip().startswith("20.10")


# Tests that change a device use lab-nodocker where they can: other sessions may be using
# the three main devices at the same time.
def test_set_password(lab: Lab, lab_device_without_docker):
    dev = lab_device_without_docker
    old = dev.password
    lab.set_password(dev.name, "a-new-password")
    try:
        with pytest.raises(paramiko.AuthenticationException):
            ssh(dev, password=old).close()
        ssh(dev, password="a-new-password").close()
    finally:
        lab.set_password(dev.name, old)
    ssh(dev).close()


def test_replace_host_key_changes_the_key_and_restore_puts_it_back(
    lab: Lab, lab_device_without_docker
):
    dev = lab_device_without_docker
    before = server_host_key(dev)
    lab.replace_host_key(dev.name)
    after = server_host_key(dev)
    assert after != before
    lab.restore_host_key(dev.name)
    assert server_host_key(dev) == before


def test_device_without_docker(lab_device_without_docker):
    dev = lab_device_without_docker
    with ssh(dev) as client:
        rc, _, _ = run(client, "command -v docker")
        rc2, out, _ = run(client, "echo ok")
    assert rc != 0
    assert (rc2, out.strip()) == (0, "ok")


def test_up_again_reuses_running_devices(lab: Lab):
    before = {d.name: lab._inspect(d.container)["Id"] for d in lab.devices}
    lab.up()
    after = {d.name: lab._inspect(d.container)["Id"] for d in lab.devices}
    assert before == after


def test_lab_apps_command_makes_the_catalogs_images_pullable_in_a_device(lab: Lab):
    """`bin/homelab lab apps` (the README's demo step): every image a recipe names is in the
    lab's registry, and a device pulls one under its real name."""
    import subprocess
    import sys
    from pathlib import Path

    from marketplace.recipes import load_catalog
    from tests.lab.images.build import is_docker_hub, plan_images

    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-m", "tests.lab", "apps"],
        cwd=root, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "images ready" in done.stdout
    names = list(plan_images(load_catalog([])))
    hub = [name for name in names if is_docker_hub(name)]
    assert hub and all(lab.registry.has(name) for name in hub), hub
    device = lab.devices[0]
    pulled = lab.exec(
        device.name, ["docker", "pull", "-q", "vaultwarden/server:1.32.7"], timeout=300
    )
    assert pulled.returncode == 0, pulled.stderr
    # images from other registries cannot come through the lab's mirror: they are loaded
    # into each device under their real names
    for name in set(names) - set(hub):
        there = lab.exec(device.name, ["docker", "image", "inspect", "-f", "{{.Id}}", name])
        assert there.returncode == 0, f"{name} is not in {device.name}: {there.stderr}"


def test_key_authentication_after_authorize_key(lab: Lab):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    private = ed25519.Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    pkey = paramiko.Ed25519Key.from_private_key(io.StringIO(pem.decode()))
    dev = lab.device("lab-server-1")
    lab.authorize_key(dev.name, public.decode() + " lab-test")
    lab.authorize_key(dev.name, public.decode() + " lab-test")  # idempotent
    keys = lab.exec(dev.name, ["cat", "/root/.ssh/authorized_keys"]).stdout
    assert keys.count(public.decode()) == 1
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(
        dev.address,
        port=dev.port,
        username="root",
        pkey=pkey,
        allow_agent=False,
        look_for_keys=False,
        timeout=10,
    )
    with client:
        assert run(client, "echo key-ok")[1].strip() == "key-ok"


def test_memory_of_nested_containers_counts_in_the_device_cgroup(lab: Lab):
    name = "lab-server-2"
    usage = "/sys/fs/cgroup/memory/memory.usage_in_bytes"

    def used() -> int:
        return int(lab.exec(name, ["cat", usage]).stdout)

    lab.exec(name, ["docker", "rm", "-f", "lab-hog"])
    before = used()
    res = lab.exec(
        name,
        [
            "docker",
            "run",
            "-d",
            "--name",
            "lab-hog",
            "busybox:1.36",
            "sh",
            "-c",
            "head -c 314572800 /dev/zero | tail; sleep 600",
        ],
    )
    assert res.returncode == 0, res.stderr
    try:
        deadline = time.monotonic() + 60
        while used() - before < 250 * 1024**2 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert used() - before >= 250 * 1024**2
    finally:
        lab.exec(name, ["docker", "rm", "-f", "lab-hog"])
