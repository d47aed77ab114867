"""The `homelab` command-line entry point: `homelab serve`, `homelab issue_api_token`..."""

import os
import sys


def main() -> None:
    if sys.argv[1:2] == ["serve"]:
        # The supervisor never imports Django (it stays small while it runs).
        from homelab.supervisor import main as serve

        sys.exit(serve(sys.argv[2:]))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "homelab.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["homelab", *sys.argv[1:]])
