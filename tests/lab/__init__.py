"""The device lab: real devices (containers with their own sshd and dockerd) for
integration tests and demos. See tests/lab/README.md.

    from tests.lab import Lab, lab_available
    lab = Lab(); lab.up(); lab.device("lab-pi").address
"""

from .core import (
    DEVICE_SPECS,
    NO_DOCKER_SPEC,
    Lab,
    LabDevice,
    LabError,
    Registry,
    lab_available,
)

__all__ = [
    "DEVICE_SPECS",
    "NO_DOCKER_SPEC",
    "Lab",
    "LabDevice",
    "LabError",
    "Registry",
    "lab_available",
]
