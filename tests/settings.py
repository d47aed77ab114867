"""Test settings: a throw-away data directory and a file database.

A file (not in-memory) SQLite database lets a real worker process, a live server and the
tests share data, and lets a test read the database file to prove no secret is in it.
"""

import os
import tempfile

os.environ.setdefault("HOMELAB_DATA_DIR", tempfile.mkdtemp(prefix="homelab-test-"))

from homelab.settings import *  # noqa: F403
from homelab.settings import DATA_DIR, DATABASES

if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test.sqlite3")}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
AXES_ENABLED = os.environ.get("HOMELAB_TEST_AXES", "false") == "true"
