from django.apps import AppConfig


class CoreConfig(AppConfig):
    """The core layer: jobs (and next: errors, masking, formatting).

    It imports nothing from the apps above it; they register their job kinds and target
    links here in their own `AppConfig.ready()` (homelab.core.jobs.register_job_kind,
    register_target_url).
    """

    name = "homelab.core"
    label = "core"
    verbose_name = "Jobs"
