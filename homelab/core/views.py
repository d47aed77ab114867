"""The Activity page (every job, newest first) and one job's page, live while it runs.

Login is required everywhere by homelab.middleware.LoginRequired. htmx requests get the
partial only (the rows of the list; the job section, the fallback when no WebSocket).
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from homelab.core import selectors
from homelab.core.jobs import job_kind_label, job_kinds
from homelab.core.models import LIVE_JOB_STATUSES, Job, JobStatus
from homelab.core.services import JobError, job_cancel

PER_PAGE = 50


class ActivityFilterForm(forms.Form):
    status = forms.ChoiceField(required=False)
    kind = forms.ChoiceField(required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["status"].choices = [("", "Any status"), *JobStatus.choices]
        kinds = set(job_kinds()) | set(Job.objects.values_list("kind", flat=True).distinct())
        self.fields["kind"].choices = [
            ("", "Any kind"),
            *sorted(((k, job_kind_label(k)) for k in kinds), key=lambda c: c[1].lower()),
        ]


def job_context(job: Job) -> dict:
    return {
        "job": job,
        "target": selectors.job_target(job),
        "steps": selectors.job_steps(job),
        "items": selectors.job_items(job),
    }


@require_GET
def activity(request: HttpRequest) -> HttpResponse:
    form = ActivityFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    jobs = selectors.jobs_filtered(
        status=filters.get("status") or None, kind=filters.get("kind") or None
    )
    page = Paginator(jobs, PER_PAGE).get_page(request.GET.get("page"))
    rows = [(job, selectors.job_target(job)) for job in page.object_list]
    context = {
        "form": form,
        "page": page,
        "rows": rows,
        "live": any(job.status in LIVE_JOB_STATUSES for job, _ in rows),
        "query": request.GET.copy(),
    }
    context["query"].pop("page", None)
    if request.htmx:
        return render(request, "core/_job_rows.html", context)
    return render(request, "core/activity.html", context)


@require_GET
def job_detail(request: HttpRequest, job_id: int) -> HttpResponse:
    job = Job.objects.select_related("user").filter(pk=job_id).first()
    if job is None:
        raise Http404("There is no such job.")
    context = job_context(job)
    if request.htmx:
        return render(request, "core/_job.html", context)
    return render(request, "core/job_detail.html", context)


@require_POST
def job_cancel_view(request: HttpRequest, job_id: int) -> HttpResponse:
    try:
        job = job_cancel(job_id=job_id, user=request.user)
    except JobError as exc:
        if exc.status == 404:
            raise Http404(exc.message) from None
        messages.warning(request, exc.message)
    else:
        if job.status == JobStatus.CANCELLED:
            messages.success(request, "Cancelled before it started; nothing was done.")
        else:
            messages.info(
                request, "Asked to cancel: it stops at its next step and undoes what it did."
            )
    return redirect("job_detail", job_id=job_id)
