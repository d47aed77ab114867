"""Benchmarks print their figures (and save them under test-artifacts/benchmarks/)."""

from __future__ import annotations

from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "benchmarks"


@pytest.fixture
def report(capsys, request):
    """Call report(line) to print a figure now (not captured) and keep it in a file."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{request.node.name}.txt"
    path.write_text("")

    def emit(line: str = "") -> None:
        with capsys.disabled():
            print(line, flush=True)
        with path.open("a") as fh:
            fh.write(line + "\n")

    emit("")
    emit(f"== {request.node.name} ==")
    return emit
