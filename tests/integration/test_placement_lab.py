"""Placement on the lab's real devices: the recommendation follows their real free memory.

lab-pi (2 GiB), lab-server-1 (4 GiB) and lab-server-2 (8 GiB) are added and polled; an app
that needs 2 GiB goes to lab-server-2. Then a container on lab-server-2 fills 6.5 GiB of
tmpfs (shared memory is charged to the device's memory cgroup and is not reclaimable
file cache, so the device's used RAM really grows); after the next poll lab-server-2 is
disqualified with its reason and the recommendation moves to lab-server-1. The hog is
removed afterwards, and a last poll brings lab-server-2 back on top.
"""

from __future__ import annotations

import os
import time

import pytest

from devices import services as device_services
from scheduling import services
from scheduling.scoring import GIB

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True)]

HOG_MIB = 6656  # 6.5 GiB of the 8 GiB device




def poll_all(devices) -> None:
    for device in devices.values():
        device_services.device_poll(device_id=device.pk)


def start_hog(lab, device_name: str, hog: str) -> None:
    lab.exec(device_name, ["docker", "rm", "-f", hog])
    lab.exec(
        device_name,
        [
            "docker",
            "run",
            "-d",
            "--name",
            hog,
            "--shm-size",
            f"{HOG_MIB + 256}m",
            "busybox:1.36",
            "sh",
            "-c",
            f"dd if=/dev/zero of=/dev/shm/fill bs=1M count={HOG_MIB} && sleep 3600",
        ],
        check=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        logs = lab.exec(device_name, ["docker", "logs", hog])
        if "records out" in logs.stdout + logs.stderr:
            return
        time.sleep(1)
    raise AssertionError(f"the memory hog on {device_name} did not finish writing in 120 s")


def test_the_recommendation_follows_the_real_free_memory(lab, lab_devices):
    app = services.requirements_build(
        name="Hungry app",
        min_ram_bytes=2 * GIB,
        recommended_ram_bytes=3 * GIB,
        min_storage_bytes=256 * 1024**2,
    )
    poll_all(lab_devices)

    before = services.placement_rank(requirements=app)
    print("before:", *(c.summary for c in before.candidates), sep="\n  ")
    assert before.recommended is not None, before.message
    assert before.recommended.device_name == "lab-server-2", before.message
    pi = next(c for c in before.candidates if c.device_name == "lab-pi")
    assert not pi.eligible and "RAM free, app needs 2" in pi.reasons[0]

    hog = f"placement-hog-{os.getpid()}"
    try:
        start_hog(lab, "lab-server-2", hog)
        poll_all(lab_devices)
        during = services.placement_rank(requirements=app)
        print("with the hog:", *(c.summary for c in during.candidates), sep="\n  ")
        server_2 = next(c for c in during.candidates if c.device_name == "lab-server-2")
        assert not server_2.eligible, server_2.summary
        assert "RAM free, app needs 2 GB" in server_2.reasons[0], server_2.reasons
        assert during.recommended is not None, during.message
        assert during.recommended.device_name == "lab-server-1"
        assert during.recommended.summary.startswith("lab-server-1: ")
    finally:
        lab.exec("lab-server-2", ["docker", "rm", "-f", hog])

    poll_all(lab_devices)
    after = services.placement_rank(requirements=app)
    print("after:", *(c.summary for c in after.candidates), sep="\n  ")
    assert after.recommended.device_name == "lab-server-2", after.message
