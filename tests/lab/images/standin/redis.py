"""Stand-in for the redis image's entrypoint (Debian's redis-server 7.0).

`redis-server --requirepass X ...` and bare `--option` arguments work as upstream: the
server listens on every address with protected mode off and keeps its data in /data.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import chown_tree, exec_as


def main() -> None:
    args = sys.argv[1:]
    if not args or args[0].startswith("-") or args[0].endswith(".conf"):
        args = ["redis-server", *args]
    if args[0] != "redis-server":
        os.execvp(args[0], args)
    rest = args[1:]
    config = [rest.pop(0)] if rest and not rest[0].startswith("-") else []
    os.makedirs("/data", exist_ok=True)
    chown_tree("/data", "redis")
    os.chdir("/data")
    exec_as(
        "redis",
        [
            "redis-server",
            *config,
            "--bind",
            "0.0.0.0",
            "--protected-mode",
            "no",
            "--dir",
            "/data",
            "--daemonize",
            "no",
            *rest,
        ],
    )


if __name__ == "__main__":
    main()
