"""django-q2's ORM broker for the embedded SQLite database, without its idle cost.

The stock ORM broker asks the database for new tasks every `poll` seconds. At 0.1 s (so
that a deployment starts at once) that query was most of the control plane's idle CPU
(issue 18). A task can only arrive by a write to the database, and every SQLite commit
adds frames to the write-ahead log or (once checkpointed) changes the database file. So this broker looks at the two files
(`os.stat`, a few microseconds) every `poll` seconds and queries only when they changed,
or at least every FULL_CHECK_SECONDS (a task whose lock expired needs no write to become
due again). The signature is taken before the query, so a write during the query is seen
on the next turn: no task waits longer than with the stock broker.

Used only when the database is SQLite (settings.Q_CLUSTER); on PostgreSQL the stock ORM
broker runs, and with Redis the Redis broker (which blocks instead of polling).
"""

from __future__ import annotations

import os
import time

from django.db import connections
from django_q.brokers.orm import ORM
from django_q.conf import Conf

FULL_CHECK_SECONDS = 30.0


class SQLiteORM(ORM):
    def __init__(self, list_key: str | None = None):
        super().__init__(list_key=list_key)
        # The connection's own name (a test run renames the database there).
        name = str(connections[Conf.ORM or "default"].settings_dict["NAME"])
        self._files = (name, f"{name}-wal")
        self._seen: tuple | None = None
        self._queried_at = 0.0

    def _signature(self) -> tuple:
        signature = []
        for path in self._files:
            try:
                stat = os.stat(path)
            except OSError:
                signature.append(None)
                continue
            # An empty log holds no write: SQLite empties, recreates or deletes it when a
            # connection (ours too) opens or closes; a commit always leaves frames in it
            # or, once checkpointed, changes the database file.
            signature.append(
                (stat.st_ino, stat.st_size, stat.st_mtime_ns) if stat.st_size else None
            )
        return tuple(signature)

    def dequeue(self):
        signature = self._signature()
        now = time.monotonic()
        if signature == self._seen and now - self._queried_at < FULL_CHECK_SECONDS:
            time.sleep(Conf.POLL)
            return None
        self._seen, self._queried_at = signature, now
        return super().dequeue()
