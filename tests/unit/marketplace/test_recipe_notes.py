"""The "What to do next" notes of the built-in recipes (issue 14, item 16).

A note that names an environment variable sends the person to look for it in the app's
compose.yaml on the device, so the name must be there (n8n's note said N8N_KEY, the
compose file has N8N_ENCRYPTION_KEY). A variable the note asks the person to add under
"Advanced > Extra settings" is the exception: it is not there until they add it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from marketplace.recipes import BUILTIN_DIR

RECIPES = sorted(p.parent for p in Path(BUILTIN_DIR).glob("*/manifest.yaml"))
# NAME_WITH_UNDERSCORE, or a family like MAIL_*
VARIABLE = re.compile(r"\b[A-Z][A-Z0-9]*_[A-Z0-9_]*\*?")


def _notes(folder: Path) -> str:
    return yaml.safe_load((folder / "manifest.yaml").read_text())["post_install_notes"]


def _compose_env_names(folder: Path) -> set[str]:
    compose = yaml.safe_load((folder / "compose.yaml").read_text())
    names: set[str] = set()
    for service in compose.get("services", {}).values():
        env = service.get("environment") or {}
        if isinstance(env, list):
            names.update(item.split("=", 1)[0] for item in env)
        else:
            names.update(env)
    return names


def test_there_are_recipes_to_check():
    assert len(RECIPES) >= 15


@pytest.mark.parametrize("folder", RECIPES, ids=lambda p: p.name)
def test_every_variable_a_note_names_is_in_the_compose_file(folder):
    names = _compose_env_names(folder)
    missing = []
    for sentence in re.split(r"(?<=[.;:])\s+", " ".join(_notes(folder).split())):
        if "Extra settings" in sentence:
            continue
        for variable in VARIABLE.findall(sentence):
            if variable.endswith("*"):
                found = any(n.startswith(variable[:-1]) for n in names)
            else:
                found = variable in names
            if not found:
                missing.append(variable)
    assert not missing, f"{folder.name}'s notes name {missing}, which its compose.yaml lacks"


def test_the_variable_check_finds_a_wrong_name():
    """The check itself: N8N_KEY (the old note) is not an environment name of n8n."""
    names = _compose_env_names(Path(BUILTIN_DIR) / "n8n")
    assert "N8N_ENCRYPTION_KEY" in names
    assert "N8N_KEY" not in names


@pytest.mark.parametrize("folder", RECIPES, ids=lambda p: p.name)
def test_notes_break_lines_only_between_sentences(folder):
    for line in _notes(folder).strip().splitlines():
        if line.strip():
            assert line.rstrip().endswith((".", "!", "?", ":")), (
                f"{folder.name}: a line break in the middle of a sentence after {line!r}"
            )
