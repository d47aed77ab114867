import os

import pytest

pytest_plugins = ["tests.lab.fixtures", "tests.cast"]

IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI a skipped lab or browser test is a failure, never a silent pass."""
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail") and (
        item.get_closest_marker("lab") or item.get_closest_marker("browser")
    ):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"A lab/browser test was skipped in CI, which counts as a failure: {reason}"
