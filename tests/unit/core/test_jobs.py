"""The job runner and its services, run in this process (sync) against the test database."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from homelab.core import jobs as jobs_module
from homelab.core.jobs import JobFailed, JobRunner, Target, mask, register_job_kind
from homelab.core.models import Job, JobItem, JobStatus, JobStep
from homelab.core.services import (
    JobError,
    job_cancel,
    job_enqueue,
    job_run,
    jobs_recover_interrupted,
)

pytestmark = pytest.mark.django_db

SECRET = "hunter2-Very-Secret"
CALLS: list[str] = []


class Ordered(JobRunner):
    label = "Three steps in order"

    def run(self):
        for name in ("first", "second", "third"):
            with self.step(name) as step:
                CALLS.append(name)
                step.message = f"{name} done"
        return {"count": 3}


class FailsAtThird(JobRunner):
    label = "Fails at the third step"

    def run(self):
        with self.step("create a"):
            self.on_undo("a", lambda: CALLS.append("undo a") or "a removed")
        with self.step("create b"):
            self.on_undo("b", self.broken_undo)
        with self.step("create c"):
            self.on_undo("c", lambda: CALLS.append("undo c") or "c removed")
            raise JobFailed("The device said no. Free some disk and try again.")

    def broken_undo(self):
        CALLS.append("undo b")
        raise JobFailed("b could not be removed: the device is off")


class CancelsItself(JobRunner):
    """A person presses Cancel while the second step runs."""

    def run(self):
        with self.step("create a"):
            self.on_undo("a", lambda: CALLS.append("undo a"))
        with self.step("wait"):
            job_cancel(job_id=self.job.pk, user=None)
            self.check_cancelled()
        CALLS.append("went on after the cancel")


class Leaky(JobRunner):
    """Every place a secret could leak to."""

    def run(self):
        self.secrets = [SECRET]
        with self.step("log in") as step:
            step.message = f"used password {SECRET}"
        self.log(f"output line with {SECRET}")
        self.item("server-1", status="ok", message=f"token {SECRET}")
        with self.step("break"):
            raise RuntimeError(f"connection string postgres://u:{SECRET}@db failed")


class Interruptible(JobRunner):
    hooked: list[int] = []

    def run(self):
        return {}

    @classmethod
    def interrupted(cls, job):
        cls.hooked.append(job.pk)
        return f"removed project {job.params['project']}"


class Batch(JobRunner):
    def run(self):
        self.item("pi-1", target=Target("device", 1))
        self.item("pi-2", status="queued")
        self.item("pi-1", status="ok", message="polled")
        self.item("pi-2", status="failed", message="did not answer")
        return {}


for kind, runner in {
    "test.ordered": Ordered,
    "test.fails": FailsAtThird,
    "test.cancels": CancelsItself,
    "test.leaky": Leaky,
    "test.interruptible": Interruptible,
    "test.batch": Batch,
}.items():
    register_job_kind(kind, runner)


@pytest.fixture(autouse=True)
def _reset():
    CALLS.clear()
    Interruptible.hooked.clear()


def steps_of(job: Job) -> list[tuple[str, str, str]]:
    return list(
        JobStep.objects.filter(job=job).order_by("order").values_list("name", "status", "message")
    )


def test_it_runs_the_steps_in_order_and_records_each():
    job = job_enqueue(kind="test.ordered", target=Target("device", 7, "pi-1"), sync=True)

    assert job.status == JobStatus.SUCCEEDED
    assert CALLS == ["first", "second", "third"]
    assert steps_of(job) == [
        ("first", "ok", "first done"),
        ("second", "ok", "second done"),
        ("third", "ok", "third done"),
    ]
    job.refresh_from_db()
    assert job.result == {"count": 3}
    assert (job.target_type, job.target_id, job.target_label) == ("device", "7", "pi-1")
    assert job.started_at <= job.finished_at and job.percent == 100.0
    assert job.worker_host == socket.gethostname() and job.worker_pid == os.getpid()


def test_a_failure_undoes_newest_first_and_a_failing_undo_does_not_stop_the_others():
    job = job_enqueue(kind="test.fails", sync=True)

    assert CALLS == ["undo c", "undo b", "undo a"]
    assert steps_of(job) == [
        ("create a", "ok", ""),
        ("create b", "ok", ""),
        ("create c", "failed", "The device said no. Free some disk and try again."),
        ("undo: c", "undone", "c removed"),
        ("undo: b", "undo_failed", "b could not be removed: the device is off"),
        ("undo: a", "undone", "a removed"),
    ]
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert job.error.startswith("The device said no. Free some disk and try again.")
    assert "b: b could not be removed" in job.error


def test_a_cancel_while_running_stops_at_the_next_check_and_undoes():
    job = job_enqueue(kind="test.cancels", sync=True)

    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED and job.cancel_requested
    assert CALLS == ["undo a"]
    assert [(name, status) for name, status, _ in steps_of(job)] == [
        ("create a", "ok"),
        ("wait", "failed"),
        ("undo: a", "undone"),
    ]
    assert "Cancelled on request" in job.error


def test_secrets_are_masked_in_steps_items_output_and_error():
    job = job_enqueue(kind="test.leaky", sync=True)

    job.refresh_from_db()
    stored = [
        *(m for _, _, m in steps_of(job)),
        job.output,
        job.error,
        *JobItem.objects.filter(job=job).values_list("message", flat=True),
    ]
    assert job.status == JobStatus.FAILED
    assert all(SECRET not in text for text in stored), stored
    assert "used password ••••••" in stored[0]
    assert "postgres://u:••••••@db" in job.error


def test_mask_hides_the_longest_secret_whole_and_the_doubled_dollar_form():
    assert mask("a pa$s and pa$$s and pass-long", ["pa$s", "pass-long", ""]) == (
        "a •••••• and •••••• and ••••••"
    )


def test_a_second_run_of_the_same_job_does_nothing():
    job = Job.objects.create(kind="test.ordered")

    first = job_run(job_id=job.pk)
    second = job_run(job_id=job.pk)

    assert first is not None and first.status == JobStatus.SUCCEEDED
    assert second is None
    assert CALLS == ["first", "second", "third"]
    assert JobStep.objects.filter(job=job).count() == 3


def test_enqueue_queues_the_task_only_after_the_transaction_commits(
    django_capture_on_commit_callbacks,
):
    from django_q.models import OrmQ

    before = OrmQ.objects.count()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        job = job_enqueue(kind="test.ordered", params={"n": 1})
        assert OrmQ.objects.count() == before  # nothing before the commit
    assert len(callbacks) == 1
    assert OrmQ.objects.count() == before + 1
    assert Job.objects.get(pk=job.pk).status == JobStatus.QUEUED


def test_enqueue_refuses_a_kind_nobody_registered():
    with pytest.raises(JobError) as caught:
        job_enqueue(kind="os.system", sync=True)
    assert caught.value.status == 422
    assert not Job.objects.exists()


def test_a_waiting_job_is_cancelled_at_once_and_never_runs():
    job = job_enqueue(kind="test.ordered")

    cancelled = job_cancel(job_id=job.pk, user=None)

    assert cancelled.status == JobStatus.CANCELLED and cancelled.finished_at
    assert job_run(job_id=job.pk) is None
    assert CALLS == []


def test_a_finished_job_cannot_be_cancelled_and_an_unknown_one_is_not_found():
    job = job_enqueue(kind="test.ordered", sync=True)

    with pytest.raises(JobError) as finished:
        job_cancel(job_id=job.pk, user=None)
    with pytest.raises(JobError) as unknown:
        job_cancel(job_id=999999, user=None)

    assert finished.value.status == 409 and "already finished" in finished.value.message
    assert unknown.value.status == 404


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_recovery_marks_a_dead_workers_job_interrupted_and_calls_its_hook():
    now = timezone.now()
    dead = Job.objects.create(
        kind="test.interruptible",
        status=JobStatus.RUNNING,
        params={"project": "hl-nextcloud"},
        worker_host=socket.gethostname(),
        worker_pid=_dead_pid(),
        started_at=now,
        heartbeat_at=now,
    )
    JobStep.objects.create(job=dead, order=1, name="start containers")
    stale = Job.objects.create(
        kind="test.interruptible",
        status=JobStatus.RUNNING,
        params={"project": "hl-other"},
        worker_host="another-host",
        worker_pid=os.getpid(),
        heartbeat_at=now - timedelta(minutes=10),
    )
    alive = Job.objects.create(
        kind="test.interruptible",
        status=JobStatus.RUNNING,
        params={"project": "hl-alive"},
        worker_host=socket.gethostname(),
        worker_pid=os.getpid(),
        heartbeat_at=now,
    )

    recovered = jobs_recover_interrupted()

    assert sorted(j.pk for j in recovered) == [dead.pk, stale.pk]
    assert sorted(Interruptible.hooked) == [dead.pk, stale.pk]
    dead.refresh_from_db()
    alive.refresh_from_db()
    assert dead.status == JobStatus.INTERRUPTED and dead.finished_at
    assert "stopped before it finished" in dead.error
    assert alive.status == JobStatus.RUNNING
    assert steps_of(dead) == [
        ("start containers", "failed", "The worker stopped during this step."),
        ("clean up after the interruption", "undone", "removed project hl-nextcloud"),
    ]
    assert jobs_recover_interrupted() == []  # a second call finds nothing more


def test_recovery_does_not_overwrite_a_job_that_finishes_late():
    """A runner finishing after recovery marked it keeps the interrupted record."""
    job = Job.objects.create(kind="test.ordered")
    Job.objects.filter(pk=job.pk).update(status=JobStatus.INTERRUPTED)

    runner = Ordered(Job.objects.get(pk=job.pk))
    runner.job.status = JobStatus.RUNNING
    runner.execute()

    assert Job.objects.get(pk=job.pk).status == JobStatus.INTERRUPTED


def test_batch_items_are_created_once_per_label_and_updated():
    job = job_enqueue(kind="test.batch", sync=True)

    items = list(JobItem.objects.filter(job=job).values_list("label", "status", "message"))
    assert items == [("pi-1", "ok", "polled"), ("pi-2", "failed", "did not answer")]
    assert JobItem.objects.get(job=job, label="pi-1").target_id == "1"


def test_progress_computes_percent_and_eta_from_bytes(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(jobs_module.time, "monotonic", lambda: clock[0])
    job = Job.objects.create(kind="test.ordered", status=JobStatus.RUNNING)
    runner = Ordered(job)

    runner.progress(bytes_done=0, bytes_total=1000)
    clock[0] += 10
    runner.progress(bytes_done=250, bytes_total=1000)

    job.refresh_from_db()
    assert job.percent == 25.0
    assert (job.bytes_done, job.bytes_total) == (250, 1000)
    assert job.eta_seconds == 30  # 250 bytes in 10 s, 750 to go


def test_an_unexpected_error_is_described_in_plain_words():
    class Crashes(JobRunner):
        def run(self):
            with self.step("divide"):
                return {"x": 1 / 0}

    register_job_kind("test.crashes", Crashes)
    job = job_enqueue(kind="test.crashes", sync=True)

    assert job.status == JobStatus.FAILED
    assert "Something unexpected went wrong (ZeroDivisionError" in job.error
    assert "try again" in job.error


def test_start_up_marks_a_job_left_running_by_a_dead_worker_interrupted():
    from homelab.startup import prepare_control_plane

    job = Job.objects.create(
        kind="test.interruptible",
        status=JobStatus.RUNNING,
        params={"project": "hl-left-over"},
        worker_host=socket.gethostname(),
        worker_pid=_dead_pid(),
        heartbeat_at=timezone.now(),
    )

    prepare_control_plane()

    assert Job.objects.get(pk=job.pk).status == JobStatus.INTERRUPTED
    assert Interruptible.hooked == [job.pk]


def test_a_killed_worker_not_yet_reaped_counts_as_gone():
    """A worker killed with SIGKILL stays a zombie until django-q2's sentinel reaps it (a
    guard cycle later): recovery must not take it for a live worker meanwhile."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        os.kill(child.pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # not reaped: wait() is not called yet
            with open(f"/proc/{child.pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                    break
            time.sleep(0.01)
        now = timezone.now()
        zombie = Job.objects.create(
            kind="test.interruptible",
            status=JobStatus.RUNNING,
            params={"project": "hl-zombie"},
            worker_host=socket.gethostname(),
            worker_pid=child.pid,
            started_at=now,
            heartbeat_at=now,
        )

        recovered = jobs_recover_interrupted()

        assert [job.pk for job in recovered] == [zombie.pk]
    finally:
        child.wait()
