"""The layer contract names the web composition's modules one by one: a new module of
homelab/ outside homelab.core must be named there too, or import-linter would not check it."""

import pkgutil
import tomllib
from pathlib import Path

import homelab

ROOT = Path(__file__).resolve().parents[3]


def _top_layer() -> set[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    layers = config["tool"]["importlinter"]["contracts"][0]["layers"]
    return {name.strip() for name in layers[0].replace("|", ":").split(":")}


def test_every_module_of_the_web_composition_is_in_the_top_layer():
    modules = {
        f"homelab.{info.name}"
        for info in pkgutil.iter_modules(homelab.__path__)
        if info.name != "core"
    }
    missing = modules - _top_layer()
    assert not missing, f"add {sorted(missing)} to the top layer in pyproject.toml"


def test_the_core_is_the_lowest_layer():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert config["tool"]["importlinter"]["contracts"][0]["layers"][-1] == "homelab.core"
