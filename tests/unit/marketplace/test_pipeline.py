"""The deployment pipeline's pure logic: the runner's undo order, masking, parsing."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from devices import compose, ssh
from devices.compose import StepFailed
from homelab.core.jobs import JobRunner
from homelab.core.masking import MASK, mask
from homelab.core.models import Job, JobStep
from marketplace import preflight
from marketplace.pipeline import Context, Step, describe, run_steps


class StepsJob(JobRunner):
    def describe_error(self, exc):
        return describe(exc)  # the deployment jobs' words


class FakeRecorder:
    """Runs steps as a real job's steps (marketplace.pipeline.run_steps on a JobRunner) and
    reads back the deployment statuses it was told and the job's step rows."""

    def __init__(self):
        self.statuses: list[str] = []
        self.job = StepsJob(Job.objects.create(kind="test.steps", status="running"))

    def set_status(self, status):
        self.statuses.append(status)

    def run(self, steps):
        return run_steps(self.job, steps, set_status=self.set_status)

    @property
    def steps(self) -> list[list[str]]:
        return [
            [s.name, s.status, s.message] for s in JobStep.objects.filter(job=self.job.job)
        ]


class World:
    """A fake device: things steps create, so a test can see what is left."""

    def __init__(self):
        self.things: list[str] = []
        self.log: list[str] = []

    def creating(self, name: str, *, fail: bool = False, undo_fails: bool = False):
        def run(ctx: Context):
            if name in self.things:  # check existing state first: never a duplicate
                return f"{name} exists"

            def undo():
                self.log.append(f"undo {name}")
                if undo_fails:
                    raise StepFailed(f"could not remove {name}")
                self.things.remove(name)

            ctx.on_undo(name, undo)
            self.things.append(name)
            if fail:
                raise StepFailed(f"{name} broke")
            return f"{name} created"

        return run


@pytest.mark.django_db
def test_it_runs_every_step_in_order_and_ends_running():
    world, recorder = World(), FakeRecorder()
    outcome = recorder.run(
        [
            Step("folder", "preparing", world.creating("folder")),
            Step("containers", "deploying", world.creating("containers")),
        ]
    )
    assert outcome.ok and outcome.status == "running"
    assert recorder.statuses == ["preparing", "deploying", "running"]
    assert recorder.steps == [
        ["folder", "ok", "folder created"],
        ["containers", "ok", "containers created"],
    ]
    assert world.things == ["folder", "containers"]


@pytest.mark.django_db
def test_a_failure_undoes_everything_in_reverse_order_including_the_failed_step():
    world, recorder = World(), FakeRecorder()
    ran_after = []
    outcome = recorder.run(
        [
            Step("folder", "preparing", world.creating("folder")),
            Step("network", "deploying", world.creating("network")),
            Step("containers", "deploying", world.creating("containers", fail=True)),
            Step("never", "health_check", lambda ctx: ran_after.append(1)),
        ]
    )
    assert not outcome.ok
    assert outcome.status == "rolled_back"
    assert outcome.failed_step == "containers" and outcome.error == "containers broke"
    assert world.log == ["undo containers", "undo network", "undo folder"]
    assert world.things == [] and ran_after == []
    assert recorder.statuses[-1] == "rolling_back"
    assert [s[:2] for s in recorder.steps] == [
        ["folder", "ok"],
        ["network", "ok"],
        ["containers", "failed"],
        ["undo: containers", "undone"],
        ["undo: network", "undone"],
        ["undo: folder", "undone"],
    ]
    # the job has nothing left to undo when it finishes afterwards
    assert recorder.job.rollback() == []


@pytest.mark.django_db
def test_an_undo_that_fails_does_not_stop_the_others_and_ends_failed():
    world, recorder = World(), FakeRecorder()
    outcome = recorder.run(
        [
            Step("folder", "preparing", world.creating("folder")),
            Step("network", "deploying", world.creating("network", undo_fails=True)),
            Step("containers", "deploying", world.creating("containers", fail=True)),
        ]
    )
    assert outcome.status == "failed"
    assert outcome.undo_errors == ["network: could not remove network"]
    assert world.log == ["undo containers", "undo network", "undo folder"]
    assert world.things == ["network"]
    assert ["undo: network", "undo_failed", "could not remove network"] in recorder.steps


@pytest.mark.django_db
def test_an_unexpected_exception_rolls_back_with_its_type_named():
    world, recorder = World(), FakeRecorder()

    def boom(ctx):
        raise KeyError("x")

    outcome = recorder.run(
        [Step("folder", "preparing", world.creating("folder")), Step("boom", "deploying", boom)]
    )
    assert outcome.status == "rolled_back" and "KeyError" in outcome.error
    assert world.things == []


@pytest.mark.django_db
def test_running_the_steps_again_creates_nothing_twice():
    world = World()
    steps = [Step("folder", "preparing", world.creating("folder"))]
    FakeRecorder().run(steps)
    recorder = FakeRecorder()
    recorder.run(steps)
    assert world.things == ["folder"]
    assert recorder.steps == [["folder", "ok", "folder exists"]]


# ---------------------------------------------------------------------------- masking
def test_masking_replaces_every_secret_longest_first_and_its_compose_escaped_form():
    text = "token=abcdef1234 short=abc pass=p$w0rd compose=p$$w0rd"
    masked = mask(text, ["abc", "abcdef1234", "p$w0rd", ""])
    assert masked == f"token={MASK} short={MASK} pass={MASK} compose={MASK}"
    assert mask("", ["x"]) == ""


def test_output_is_cut_to_its_tail():
    assert compose.tail("x" * 10, 4) == "…xxxx"
    assert compose.tail("short", 10) == "short"


# ----------------------------------------------------------------------------- parsing
SS_OUTPUT = """\
tcp   LISTEN 0      4096         0.0.0.0:8080       0.0.0.0:*    users:(("docker-proxy",pid=812,fd=4))
tcp   LISTEN 0      128             [::]:22            [::]:*    users:(("sshd",pid=50,fd=3))
udp   UNCONN 0      0          127.0.0.1:53         0.0.0.0:*
garbage line
"""


def test_ss_output_gives_each_listening_port_with_its_process():
    found = preflight.parse_ss(SS_OUTPUT)
    assert [(f.protocol, f.port, f.process) for f in found] == [
        ("tcp", 8080, "docker-proxy"),
        ("tcp", 22, "sshd"),
        ("udp", 53, ""),
    ]


@pytest.mark.parametrize(
    ("command", "version", "flags"),
    [
        ("docker compose", "2.40.3", ["--wait", "--wait-timeout", "90"]),
        ("docker compose", "v2.5.0", ["--wait"]),
        ("docker compose", "2.0.1", []),
        ("docker-compose", "1.29.2", []),
    ],
)
def test_wait_flags_follow_the_compose_version(command, version, flags):
    device = SimpleNamespace(name="d", compose_command=command, compose_version=version)
    assert compose.wait_flags(device, 90) == flags


def test_an_unknown_compose_command_is_refused():
    device = SimpleNamespace(name="d", compose_command="rm -rf /", compose_version="")
    with pytest.raises(StepFailed):
        compose.compose_base(device)


def test_the_deploy_root_must_be_a_plain_absolute_path(settings):
    settings.HOMELAB_DEPLOY_ROOT = "/srv/apps/"
    assert compose.deploy_root() == "/srv/apps"
    for bad in ("relative", "/srv/$(id)", "/srv/../etc", "/srv/a b"):
        settings.HOMELAB_DEPLOY_ROOT = bad
        with pytest.raises(StepFailed):
            compose.deploy_root()


# ------------------------------------------------------------------------------ retry
def test_a_dropped_connection_is_retried_up_to_three_times(monkeypatch):
    calls = []

    def flaky(device, args, timeout=None, stdin=None):
        calls.append(args)
        if len(calls) < 3:
            raise ssh.Unreachable("gone")
        return 0, "ok", ""

    monkeypatch.setattr(ssh, "run", flaky)
    slept = []
    shell = compose.DeviceShell(None, sleep=slept.append)
    assert shell.run(["true"]) == (0, "ok", "")
    assert len(calls) == 3 and slept == [1.0, 2.0]


def test_it_gives_up_after_three_retries(monkeypatch):
    def down(device, args, timeout=None, stdin=None):
        raise ssh.Unreachable("gone")

    monkeypatch.setattr(ssh, "run", down)
    slept = []
    shell = compose.DeviceShell(None, sleep=slept.append)
    with pytest.raises(ssh.Unreachable):
        shell.run(["true"])
    assert slept == [1.0, 2.0, 4.0]


def test_a_refused_login_is_not_retried(monkeypatch):
    calls = []

    def refused(device, args, timeout=None, stdin=None):
        calls.append(1)
        raise ssh.AuthFailed("no")

    monkeypatch.setattr(ssh, "run", refused)
    shell = compose.DeviceShell(None)
    with pytest.raises(ssh.AuthFailed):
        shell.run(["true"])
    assert calls == [1]


def test_a_command_failure_names_what_failed_with_secrets_masked(monkeypatch):
    monkeypatch.setattr(ssh, "run", lambda *a, **k: (1, "", "bad token s3cr3t-value"))
    shell = compose.DeviceShell(None, secrets=["s3cr3t-value"])
    with pytest.raises(StepFailed) as caught:
        shell.check(["docker", "compose", "up"], what="docker compose up")
    assert str(caught.value) == f"docker compose up failed (exit 1): bad token {MASK}"
