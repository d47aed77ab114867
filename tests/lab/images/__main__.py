"""python -m tests.lab.images [--list]: build the stand-ins and push them into the lab."""

from __future__ import annotations

import argparse
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.lab.images")
    parser.add_argument("--list", action="store_true", help="only show what would be built")
    args = parser.parse_args()
    from . import load_catalog_from_the_command_line
    from .build import plan_images

    catalog = load_catalog_from_the_command_line()
    if args.list:
        for name, plan in plan_images(catalog).items():
            print(f"{name:50} {plan.role:9} {','.join(sorted(plan.ports))} {plan.health}")
        return 0
    from tests.lab import Lab

    from . import build_and_push_recipe_images

    t0 = time.monotonic()
    lab = Lab()
    lab.up()
    images = build_and_push_recipe_images(lab, catalog)
    print(f"{len(images)} images ready in {time.monotonic() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
