from django.apps import AppConfig


class JobKindsConfig(AppConfig):
    name = "tests.jobkinds"
    label = "test_jobkinds"

    def ready(self) -> None:
        from homelab.core.jobs import register_job_kind
        from tests.jobkinds.runners import ThreeSteps

        register_job_kind("test.three_steps", ThreeSteps)
