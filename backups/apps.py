from django.apps import AppConfig


class BackupsConfig(AppConfig):
    name = "backups"
    verbose_name = "Backups"

    def ready(self) -> None:
        from backups import jobs
        from homelab.core.jobs import register_job_kind

        for kind, runner_class in jobs.KINDS.items():
            register_job_kind(kind, runner_class)
