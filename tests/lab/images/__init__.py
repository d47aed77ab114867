"""Stand-in images for the recipes' images in the device lab. See README.md here.

from tests.lab import Lab
from tests.lab.images import build_and_push_recipe_images
build_and_push_recipe_images(Lab())
"""


def build_and_push_recipe_images(lab, catalog=None, *, verbose: bool = True) -> dict[str, str]:
    from .build import build_and_push_recipe_images as run

    return run(lab, catalog, verbose=verbose)


__all__ = ["build_and_push_recipe_images"]
