"""Test settings plus tests.jobkinds: harmless job kinds a real worker process can run."""

from tests.settings import *  # noqa: F403
from tests.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.jobkinds"]
