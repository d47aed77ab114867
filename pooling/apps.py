from django.apps import AppConfig


class PoolingConfig(AppConfig):
    name = "pooling"
    verbose_name = "Shared databases"

    def ready(self) -> None:
        # devices asks the layers above through its registries (DESIGN.md "Layers")
        from django.urls import reverse

        from devices import hooks as device_hooks
        from homelab.core.jobs import register_job_kind, register_target_url
        from pooling import jobs, selectors, tasks

        # shared servers are checked before the deployments' after-poll work (order 20)
        device_hooks.after_poll.register(tasks.after_device_poll, order=10)
        device_hooks.dashboard_figures.register(selectors.dashboard_figures, order=20)
        register_job_kind(jobs.KIND, jobs.RemoveSharedServerJob)
        register_target_url("shared_instance", lambda pk: reverse("pooling_index"))
