"""Harmless job kinds for tests: they touch nothing outside their own rows."""

from __future__ import annotations

import time

from homelab.core.jobs import JobRunner


class ThreeSteps(JobRunner):
    """Three steps with a short pause in each (params: pause_seconds), and a progress
    figure after each."""

    label = "Three harmless steps"

    def run(self) -> dict:
        pause = float(self.params.get("pause_seconds", 0.5))
        for number in (1, 2, 3):
            self.check_cancelled()
            with self.step(f"step {number}") as step:
                time.sleep(pause)
                step.message = f"step {number} of 3 done"
            self.progress(percent=100 * number / 3)
        return {"steps": 3}
