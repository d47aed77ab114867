"""One runner for every long operation: how a job runs, top to bottom.

An app registers its kinds in its `AppConfig.ready()`:

    register_job_kind("app.remove", RemoveAppJob)
    register_target_url("deployment", lambda pk: reverse("deployment_detail", args=[pk]))

and a door (page, API, command) starts one with the service in homelab.core.services:

    job = job_enqueue(kind="app.remove", target=Target("deployment", d.pk, d.app_name),
                      user=request.user, params={"keep_data": True})   # 202 {"job_id": job.pk}

A subclass of `JobRunner` implements `run()` with the helpers below; `execute()` does the
rest:

1. The worker claims the job (queued -> running, one conditional UPDATE; job_run) and
   builds the kind's runner with the job row.
2. A heartbeat thread writes `heartbeat_at` every HEARTBEAT_SECONDS while it runs, so a
   job whose worker died can be told from a slow one (jobs_recover_interrupted).
3. `run()` records its steps with `with self.step(name) as step:` (a JobStep row, running,
   then ok with `step.message`, or failed with the error). Whatever a step creates, it
   registers the undo for with `self.on_undo(name, callable)`, before the risky command.
4. `run()` returns: succeeded with its result (a JSON dict). It raises: failed, with the
   error in plain words (`JobFailed(message)` carries one; `describe_error` turns other
   exceptions into one). `check_cancelled()` raises JobCancelled when a person asked to
   cancel: cancelled. On failed and cancelled the undos run newest first, each recorded
   as its own step (`undo: <name>`, undone or undo_failed); an undo failing does not
   stop the others, and `self.undo_errors` lists what is left.
5. The row is finished (status, finished_at, result, error, output) with a conditional
   UPDATE that only applies while it is still running (recovery may have marked it
   interrupted meanwhile), then the `finished()` hook runs.
Every message, the output and the error pass through `mask(text, self.secrets)`.

A worker that dies takes the in-memory undos with it: the class hook `interrupted(job)`
says how to clean up from the job's params and target alone (`down -v` of the project
named in params, say); jobs_recover_interrupted calls it and records its message as a step.

Nothing here is device specific. Two jobs that must not overlap on one device wait for
the device's lease, which lives in devices: the runner takes it inside its own `run()`.

How a deployment becomes a job (marketplace/pipeline.py, for the lead):
- `DeployJob(JobRunner)` with `run()` looping over `DeploymentPipeline.steps()`: for each
  `Step(name, status, run)` it sets the Deployment's own status to `step.status`, then
  `with self.step(step.name) as s: s.message = step.run(self) or ""` (the runner itself
  is the `Context`: it has `on_undo(name, action)` with the same signature).
- `secrets` = the deployment's secret values; `describe_error` = today's `_describe`
  (StepFailed -> its words, SSHError -> "The device did not answer over SSH: ...").
- `undoing()` sets the Deployment to rolling_back; `finished()` sets rolled_back or
  failed from `self.job.status` and `self.undo_errors` (what `Outcome` carried), and
  marks cleanup pending when undos failed. `interrupted(job)` is today's recovery:
  `down -v` by project name and remove the folder (both from params).
- The Deployment keeps its own status and points to its jobs (a FK or the job's target
  `("deployment", pk)`); its page follows ws/jobs/<job id>/ or keeps its own consumer.
- DeploymentStep rows become JobStep rows (same names and statuses) and
  DeploymentRecorder goes away.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from django.db import close_old_connections, connection
from django.utils import timezone

from homelab.core.models import (
    MESSAGE_MAX_CHARS,
    OUTPUT_MAX_CHARS,
    Job,
    JobItem,
    JobItemStatus,
    JobStatus,
    JobStep,
    JobStepStatus,
)

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 20.0
# a running job whose heartbeat is older than this has lost its worker
STALE_AFTER_SECONDS = 180.0
PROGRESS_WRITE_EVERY_SECONDS = 0.5
MASK = "••••••"


# ------------------------------------------------------------------------- the registry
_KINDS: dict[str, type[JobRunner]] = {}
_TARGET_URLS: dict[str, Callable[[str], str | None]] = {}


def register_job_kind(kind: str, runner_class: type[JobRunner]) -> None:
    """Make `kind` runnable; called from an app's AppConfig.ready(). Registering the same
    kind twice with another class is a bug and says so."""
    if not kind or len(kind) > 60:
        raise ValueError(f"A job kind needs a name of 1 to 60 characters, not {kind!r}.")
    existing = _KINDS.get(kind)
    if existing is not None and existing is not runner_class:
        raise ValueError(f"The job kind {kind!r} is registered already ({existing.__name__}).")
    _KINDS[kind] = runner_class
    runner_class.kind = kind


def job_kind(kind: str) -> type[JobRunner] | None:
    return _KINDS.get(kind)


def job_kinds() -> dict[str, type[JobRunner]]:
    """{kind: runner class}, for filters and the admin."""
    return dict(_KINDS)


def job_kind_label(kind: str) -> str:
    runner_class = _KINDS.get(kind)
    return (runner_class.label if runner_class and runner_class.label else kind) or kind


def register_target_url(target_type: str, url_maker: Callable[[str], str | None]) -> None:
    """Let pages link a job's target: `url_maker(target_id)` answers its page's URL."""
    _TARGET_URLS[target_type] = url_maker


def target_url(target_type: str, target_id: str) -> str | None:
    maker = _TARGET_URLS.get(target_type)
    if maker is None or not target_id:
        return None
    try:
        return maker(target_id)
    except Exception:  # a target that is gone (or a bad id) is shown without a link
        return None


@dataclass(frozen=True)
class Target:
    """What a job works on: ("deployment", 12, "Nextcloud on pi-1")."""

    type: str
    id: str | int | None = None
    label: str = ""


# ---------------------------------------------------------------------------- helpers
def mask(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret value replaced by MASK, longest first (so a secret that
    contains another is masked whole), with compose's doubled `$` form too.

    Private to the runner until homelab.core.masking (the same rule, moved from
    marketplace.shell) lands; the lead unifies the two."""
    if not text:
        return text
    for value in sorted({str(s) for s in secrets if s}, key=len, reverse=True):
        if "$" in value:
            text = text.replace(value.replace("$", "$$"), MASK)
        text = text.replace(value, MASK)
    return text


def _clip(text: str, limit: int = MESSAGE_MAX_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class JobFailed(Exception):
    """Raised by a runner with the error in plain words: what happened and what to do."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class JobCancelled(Exception):
    """Raised by check_cancelled(): a person asked to cancel the job."""


class StepHandle:
    """What `with runner.step(name) as step:` yields: set `step.message` for the row."""

    def __init__(self, row: JobStep):
        self.row = row
        self.message = ""


# ----------------------------------------------------------------------------- runner
class JobRunner:
    """The base class of every job kind; subclasses implement `run()`.

    Class attributes: `label` (plain words for lists: "Remove an app"); `kind` is set by
    register_job_kind. Hooks a subclass may override: `describe_error`, `undoing`,
    `finished` and the class method `interrupted`.
    """

    kind: ClassVar[str] = ""
    label: ClassVar[str] = ""
    # the worker gives a job of this kind this long (django-q2's task timeout); None: the
    # cluster's default. Q_CLUSTER's `retry` must stay larger than the longest one.
    timeout_seconds: ClassVar[int | None] = None

    def __init__(self, job: Job):
        self.job = job
        self.params: dict[str, Any] = dict(job.params or {})
        self.secrets: list[str] = []
        self.undo_errors: list[str] = []
        self._undos: list[tuple[str, Callable[[], object]]] = []
        self._order = JobStep.objects.filter(job_id=job.pk).count()
        self._output = job.output or ""
        self._progress_written_at = 0.0
        self._progress_started: tuple[float, int] | None = None
        self._heartbeat_written_at = time.monotonic()

    # -- what a subclass writes
    def run(self) -> dict | None:
        raise NotImplementedError

    def describe_error(self, exc: BaseException) -> str:
        """The error of a failed job in plain words. Subclasses translate their own
        exceptions (return super().describe_error(exc) for the rest)."""
        if isinstance(exc, JobFailed):
            return exc.message
        return (
            f"Something unexpected went wrong ({type(exc).__name__}: {exc}). What was done "
            "so far has been undone where possible; try again, and if it happens again the "
            "worker's log has the details."
        )

    def undoing(self) -> None:
        """Called once before the undos run (a deployment says rolling_back here)."""

    def finished(self) -> None:
        """Called after the job row is final (self.job.status, self.undo_errors)."""

    def on_step(self, row: JobStep) -> None:
        """Called when a step row is created and again when it is finished (undos and
        skipped steps too): a kind that keeps its own record of steps mirrors them here."""

    @classmethod
    def cancelled_before_start(cls, job: Job) -> None:
        """Called when the job was cancelled while it waited (run() never ran): a kind
        whose target already says "waiting for this job" puts the target right here."""

    @classmethod
    def interrupted(cls, job: Job) -> str:
        """Clean up after a worker died mid-job, from `job.params` and the target alone
        (the in-memory undos are gone). Return what was done, in plain words; raise when
        the clean-up failed. The default has nothing to clean up."""
        return "Nothing was left to clean up."

    # -- helpers for run()
    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[StepHandle]:
        """Record one step: running now; ok with `handle.message` when the block ends;
        failed with the error when it raises (the exception goes on)."""
        row = self._step_row(name, JobStepStatus.RUNNING)
        handle = StepHandle(row)
        try:
            yield handle
        except JobCancelled:
            self._step_finish(row, JobStepStatus.FAILED, "Stopped here: cancel was requested.")
            raise
        except Exception as exc:
            self._step_finish(row, JobStepStatus.FAILED, self.describe_error(exc))
            raise
        self._step_finish(row, JobStepStatus.OK, handle.message)

    def skip(self, name: str, message: str = "") -> None:
        """Record a step that had nothing to do."""
        row = self._step_row(name, JobStepStatus.SKIPPED)
        self._step_finish(row, JobStepStatus.SKIPPED, message)

    def on_undo(self, name: str, action: Callable[[], object]) -> None:
        """Register how to undo what a step creates; undos run newest first on failure or
        cancel. `action()` may return a message for its step row."""
        self._undos.append((name, action))

    def progress(
        self,
        *,
        percent: float | None = None,
        bytes_done: int | None = None,
        bytes_total: int | None = None,
    ) -> None:
        """Where the job is. The percent follows from the bytes when not given; the ETA
        from the pace since the first call. Written at most every half second."""
        now = time.monotonic()
        if percent is None and bytes_done is not None and bytes_total:
            percent = 100.0 * bytes_done / bytes_total
        if percent is not None:
            percent = max(0.0, min(100.0, float(percent)))
        done_so_far = bytes_done if bytes_done is not None else percent
        if self._progress_started is None and done_so_far is not None:
            self._progress_started = (now, done_so_far)
        eta = None
        if self._progress_started is not None and done_so_far is not None:
            first_time, first_done = self._progress_started
            elapsed, gained = now - first_time, done_so_far - first_done
            remaining = (
                (bytes_total - bytes_done)
                if bytes_done is not None and bytes_total
                else (100.0 - percent if percent is not None else None)
            )
            if elapsed > 0 and gained > 0 and remaining is not None:
                eta = max(0, round(remaining * elapsed / gained))
        final = percent is not None and percent >= 100.0
        if not final and now - self._progress_written_at < PROGRESS_WRITE_EVERY_SECONDS:
            return
        self._progress_written_at = now
        fields = {"percent": percent, "eta_seconds": 0 if final else eta}
        if bytes_done is not None:
            fields["bytes_done"] = bytes_done
        if bytes_total is not None:
            fields["bytes_total"] = bytes_total
        for key, value in fields.items():
            setattr(self.job, key, value)
        self._beat(fields)

    def item(
        self,
        label: str,
        *,
        status: str = JobItemStatus.RUNNING,
        message: str = "",
        target: Target | None = None,
    ) -> JobItem:
        """Create or update the batch line `label` (one per device or app)."""
        values = {"status": status, "message": _clip(mask(message, self.secrets))}
        if target is not None:
            values["target_type"] = target.type
            values["target_id"] = "" if target.id is None else str(target.id)
        item, _ = JobItem.objects.update_or_create(
            job_id=self.job.pk, label=_clip(label, 200), defaults=values
        )
        return item

    def log(self, text: str) -> None:
        """Append to the job's output (masked; only the last OUTPUT_MAX_CHARS are kept)."""
        if not text:
            return
        line = mask(text, self.secrets)
        self._output = (self._output + line + ("" if line.endswith("\n") else "\n"))[
            -OUTPUT_MAX_CHARS:
        ]
        self.job.output = self._output
        self._beat({"output": self._output})

    def check_cancelled(self) -> None:
        """Raise JobCancelled when a person asked to cancel; call it between steps and
        in long loops."""
        if Job.objects.filter(pk=self.job.pk, cancel_requested=True).exists():
            raise JobCancelled
        self._beat({})

    # -- the lifecycle
    def execute(self) -> Job:
        """Run the claimed job to its end; see the module docstring. Never raises for
        what `run()` does: the outcome is the job's row."""
        stop = threading.Event()
        beater = threading.Thread(
            target=_heartbeat, args=(self.job.pk, stop), name=f"job-{self.job.pk}-heartbeat"
        )
        beater.daemon = True
        beater.start()
        result: dict | None = None
        error = ""
        try:
            try:
                result = self.run() or {}
                status = JobStatus.SUCCEEDED
            except JobCancelled:
                status = JobStatus.CANCELLED
                error = "Cancelled on request. What it had done so far has been undone."
                self._undo_all()
                if self.undo_errors:
                    error = (
                        "Cancelled on request, but some of what it had done could not be "
                        "undone: " + "; ".join(self.undo_errors)
                    )
            except Exception as exc:  # every failure undoes and is recorded
                if not isinstance(exc, JobFailed):
                    logger.exception("Job %s (%s) failed", self.job.pk, self.kind)
                status = JobStatus.FAILED
                error = self.describe_error(exc)
                self._undo_all()
                if self.undo_errors:
                    error += " Some of what it had done could not be undone: " + "; ".join(
                        self.undo_errors
                    )
        finally:
            stop.set()
            beater.join(timeout=5)
        self._finish(status, result or {}, error)
        self.finished()
        return self.job

    def rollback(self) -> list[str]:
        """Run the undos registered so far now, newest first (as a failure would), for a
        run() that goes on after a failure to record its own outcome; returns what could
        not be undone (self.undo_errors). A later failure finds nothing left to undo."""
        self._undo_all()
        return list(self.undo_errors)

    def _undo_all(self) -> None:
        if not self._undos:
            return
        self.undoing()
        while self._undos:
            name, action = self._undos.pop()
            row = self._step_row(f"undo: {name}", JobStepStatus.RUNNING)
            try:
                message = action() or ""
            except Exception as exc:  # keep undoing the rest
                words = self.describe_error(exc)
                self.undo_errors.append(f"{name}: {mask(words, self.secrets)}")
                self._step_finish(row, JobStepStatus.UNDO_FAILED, words)
            else:
                self._step_finish(row, JobStepStatus.UNDONE, str(message))

    def _finish(self, status: str, result: dict, error: str) -> None:
        now = timezone.now()
        fields = {
            "status": status,
            "finished_at": now,
            "heartbeat_at": now,
            "result": result,
            "error": _clip(mask(error, self.secrets)),
            "output": self._output,
        }
        if status == JobStatus.SUCCEEDED:
            fields["percent"] = 100.0
            fields["eta_seconds"] = 0
        changed = Job.objects.filter(pk=self.job.pk, status=JobStatus.RUNNING).update(**fields)
        if changed:
            for key, value in fields.items():
                setattr(self.job, key, value)
        else:  # marked interrupted meanwhile (a heartbeat too late): keep that record
            self.job.refresh_from_db()

    def _step_row(self, name: str, status: str) -> JobStep:
        self._order += 1
        row = JobStep.objects.create(
            job_id=self.job.pk, order=self._order, name=_clip(name, 120), status=status
        )
        self.on_step(row)
        return row

    def _step_finish(self, row: JobStep, status: str, message: str) -> None:
        row.status = status
        row.message = _clip(mask(message or "", self.secrets))
        row.finished_at = timezone.now()
        row.save(update_fields=["status", "message", "finished_at"])
        self.on_step(row)
        self._beat({})

    def _beat(self, fields: dict) -> None:
        """Write `fields` with a fresh heartbeat (or only the heartbeat, at most every few
        seconds, when there is nothing else to write)."""
        now = time.monotonic()
        if not fields and now - self._heartbeat_written_at < HEARTBEAT_SECONDS / 4:
            return
        self._heartbeat_written_at = now
        Job.objects.filter(pk=self.job.pk).update(heartbeat_at=timezone.now(), **fields)


def _heartbeat(job_id: int, stop: threading.Event) -> None:
    """Write the job's heartbeat until `stop` is set (its own database connection)."""
    try:
        while not stop.wait(HEARTBEAT_SECONDS):
            try:
                Job.objects.filter(pk=job_id, status=JobStatus.RUNNING).update(
                    heartbeat_at=timezone.now()
                )
            except Exception:  # a busy database now and then is no reason to stop beating
                logger.warning("Could not write the heartbeat of job %s", job_id, exc_info=True)
    finally:
        close_old_connections()
        connection.close()
