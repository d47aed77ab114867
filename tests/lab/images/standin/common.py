"""Helpers shared by the stand-in entrypoints (Debian's python3, stdlib only)."""

from __future__ import annotations

import os
import pwd
import sys


def log(message: str) -> None:
    print(f"[stand-in] {message}", file=sys.stderr, flush=True)


def first(*names: str, default: str = "") -> str:
    """The first non-empty environment variable of `names` (upstream images accept
    MARIADB_* and MYSQL_* spellings, for example)."""
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return default


def exec_as(user: str, argv: list[str]) -> None:
    """Replace this process by argv running as `user` (what gosu does upstream)."""
    entry = pwd.getpwnam(user)
    os.setgroups([])
    os.setgid(entry.pw_gid)
    os.setuid(entry.pw_uid)
    os.environ["HOME"] = entry.pw_dir
    os.execvp(argv[0], argv)


def chown_tree(path: str, user: str) -> None:
    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        os.chown(root, entry.pw_uid, entry.pw_gid)
        for name in files:
            os.lchown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)
