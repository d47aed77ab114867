"""pytest fixtures for the device lab. Loaded from tests/conftest.py with
``pytest_plugins = ["tests.lab.fixtures"]``.

* ``lab`` (session): the lab, up once per session. Torn down at the end only if it was not
  running before the session and HOMELAB_LAB_KEEP is unset (with concurrent sessions:
  by the last one to finish). Skipped with the reason when
  the machine cannot run it; with CI=true that is a failure instead.
* ``lab_device_without_docker`` (session): the extra device ``lab-nodocker`` (sshd only).
* ``lab_restore`` (function): the lab; after the test every device is running again with
  the lab password and its original host keys.

Every test using one of them gets the ``lab`` marker. Whatever a test changes through the
Lab API (stop_device, set_password, replace_host_key) is undone after that test.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

import pytest

from .core import NO_DOCKER_SPEC, Lab, LabDevice, _state_dir, lab_available, session_marker

LAB_FIXTURES = frozenset({"lab", "lab_device_without_docker", "lab_restore"})


def _keep() -> bool:
    return bool(os.environ.get("HOMELAB_LAB_KEEP"))


def pytest_collection_modifyitems(config, items):
    for item in items:
        if LAB_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.lab)


def _unavailable(reason: str) -> None:
    msg = f"device lab unavailable: {reason}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{msg} (CI=true: the lab is required)", pytrace=False)
    pytest.skip(msg)


@contextlib.contextmanager
def _sessions_lock():
    with open(_state_dir() / "sessions.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks: tells a live session from a reused pid."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[19]


def _live_leases(exclude: int | None = None) -> list[Path]:
    """Lease files of pytest sessions still alive (several sessions may share the lab)."""
    live = []
    for f in (_state_dir() / "sessions").glob("*.lease"):
        try:
            pid = int(f.stem)
            alive = _start_time(pid) == f.read_text().strip()
        except (OSError, ValueError):
            alive = False
        if not alive:
            f.unlink(missing_ok=True)
        elif pid != exclude:
            live.append(f)
    return live


@pytest.fixture(scope="session")
def lab():
    """The lab for this session. Several sessions may share it: the last one out tears it
    down, and only if a session (not `python -m tests.lab up`) brought it up."""
    ok, reason = lab_available()
    if not ok:
        _unavailable(reason)
    the_lab = Lab()
    (_state_dir() / "sessions").mkdir(exist_ok=True)
    lease = _state_dir() / "sessions" / f"{os.getpid()}.lease"
    with _sessions_lock():
        if not the_lab.is_running():
            session_marker().write_text(f"{os.getpid()}\n")
        lease.write_text(_start_time(os.getpid()))
    the_lab.up()
    yield the_lab
    with _sessions_lock():
        lease.unlink(missing_ok=True)
        if _live_leases(exclude=os.getpid()) or _keep():
            return
        if session_marker().exists():
            the_lab.down()
            session_marker().unlink(missing_ok=True)


@pytest.fixture(scope="session")
def lab_device_without_docker(lab: Lab) -> LabDevice:
    existed = any(d.name == NO_DOCKER_SPEC.name for d in lab._existing_extra())
    dev = lab.add_device_without_docker()
    yield dev
    with _sessions_lock():
        if not existed and not _keep() and not _live_leases(exclude=os.getpid()):
            lab.remove_device(dev.name)


@pytest.fixture
def lab_restore(lab: Lab) -> Lab:
    """The lab, fully restored after the test (devices started, password, host keys)."""
    yield lab
    lab.restore()


@pytest.fixture(autouse=True)
def _lab_undo_api_changes(request):
    """Cheap safety net: undo what a lab test changed through the Lab API."""
    if "lab" not in request.fixturenames:
        yield
        return
    the_lab: Lab = request.getfixturevalue("lab")
    yield
    # only the devices this session changed: another session may have stopped one on purpose
    changed = {n for n, what in the_lab._changed.items() if what} | {
        d.name for d in (*the_lab.devices, *the_lab.extra_devices) if d.password != the_lab.password
    }
    for name in sorted(changed):
        the_lab.restore(name)
