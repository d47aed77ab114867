"""Stand-in images for the recipes' images in the device lab. See README.md here.

from tests.lab import Lab
from tests.lab.images import build_and_push_recipe_images
build_and_push_recipe_images(Lab())
"""


def build_and_push_recipe_images(lab, catalog=None, *, verbose: bool = True) -> dict[str, str]:
    from .build import build_and_push_recipe_images as run

    return run(lab, catalog, verbose=verbose)


def load_catalog_from_the_command_line():
    """The recipe catalog for a command run outside Django (python -m tests.lab apps,
    python -m tests.lab.images): sets Django up first; invalid recipes are reported."""
    import os
    import sys

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "homelab.settings")
    import django

    django.setup()
    from marketplace.recipes import load_catalog

    catalog = load_catalog()
    for problem in catalog.invalid:
        print(f"skipped (invalid): {problem}", file=sys.stderr)
    return catalog


__all__ = ["build_and_push_recipe_images", "load_catalog_from_the_command_line"]
