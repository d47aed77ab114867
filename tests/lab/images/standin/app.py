"""The generic app stand-in: one small HTTP server for every app image of the catalog.

Configured by the environment baked into each app's thin image layer:
  STANDIN_APP        the recipe slug, STANDIN_IMAGE the image name it stands in for
  STANDIN_PORTS      "80/tcp,53/udp": every container port the recipe declares
  STANDIN_HEALTH     the health check path (served with 200)
  STANDIN_VOLUMES    "/data,/config": the data volumes; a file is written into each
  STANDIN_DATABASES  JSON list of {"engine": postgres|mysql|redis, "env": {host, port,
                     database, user, password, url: env var names}} from the manifest

GET /standin/status answers JSON: the volumes written and, for each database its env
vars describe, whether a TCP connection and a real login (psql / mariadb / Redis AUTH +
PING) worked. Any other path answers 200. UDP ports echo what they receive.

Redis: with a user (in the URL or the `user` role) it logs in with `AUTH <user> <password>`.
With a key prefix (the `prefix` role, as in a shared Redis) it SETs and GETs a key under
the prefix (`prefix_ok`) and tries a key outside it, which a shared Redis must refuse
with NOPERM (`outside_refused`); both must hold for `login`.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse

DEFAULT_PORTS = {"postgres": 5432, "mysql": 3306, "redis": 6379}
# used when the image carries no mapping: names apps commonly read
GUESSES = [
    {"engine": "postgres", "env": {"url": "DATABASE_URL"}},
    {
        "engine": "postgres",
        "env": {
            "host": "POSTGRES_HOST",
            "port": "POSTGRES_PORT",
            "database": "POSTGRES_DB",
            "user": "POSTGRES_USER",
            "password": "POSTGRES_PASSWORD",
        },
    },
    {
        "engine": "mysql",
        "env": {
            "host": "MYSQL_HOST",
            "port": "MYSQL_PORT",
            "database": "MYSQL_DATABASE",
            "user": "MYSQL_USER",
            "password": "MYSQL_PASSWORD",
        },
    },
    {
        "engine": "postgres",
        "env": {
            "host": "DB_HOST",
            "port": "DB_PORT",
            "database": "DB_DATABASE",
            "user": "DB_USERNAME",
            "password": "DB_PASSWORD",
        },
    },
    {"engine": "redis", "env": {"url": "REDIS_URL"}},
    {
        "engine": "redis",
        "env": {"host": "REDIS_HOST", "port": "REDIS_PORT", "password": "REDIS_PASSWORD"},
    },
]
VOLUMES: dict[str, str] = {}


def log(message: str) -> None:
    print(f"[stand-in {os.environ.get('STANDIN_APP', '?')}] {message}", file=sys.stderr, flush=True)


def write_volumes() -> None:
    for path in filter(None, os.environ.get("STANDIN_VOLUMES", "").split(",")):
        try:
            os.makedirs(path, exist_ok=True)
            with open(os.path.join(path, "standin-written.txt"), "a") as fh:
                fh.write(f"{time.time():.0f} {socket.gethostname()}\n")
            VOLUMES[path] = "written"
        except OSError as e:
            VOLUMES[path] = f"error: {e}"


def describe(need: dict) -> dict | None:
    """The database coordinates a need's env vars give, or None when they are unset."""
    env = {role: os.environ.get(var) for role, var in need["env"].items()}
    engine = need["engine"]
    info = {
        "engine": engine,
        "host": env.get("host"),
        "port": env.get("port"),
        "database": env.get("database"),
        "user": env.get("user"),
        "password": env.get("password"),
        "prefix": env.get("prefix") or "",
    }
    if env.get("url"):
        url = urlparse(env["url"])
        scheme = url.scheme.split("+")[0]
        engine = {
            "postgresql": "postgres",
            "postgres": "postgres",
            "mysql": "mysql",
            "mariadb": "mysql",
            "redis": "redis",
        }.get(scheme, engine)
        info.update(
            engine=engine,
            host=url.hostname,
            port=url.port,
            database=url.path.lstrip("/") or None,
            user=unquote(url.username) if url.username else None,
            password=unquote(url.password) if url.password else None,
        )
    if not info["host"]:
        return None
    info["port"] = int(info["port"] or DEFAULT_PORTS[engine])
    return info


def check(info: dict) -> dict:
    engine, host, port = info["engine"], info["host"], info["port"]
    password = info.get("password") or ""
    result = {
        "engine": engine,
        "host": host,
        "port": port,
        "database": info.get("database"),
        "user": info.get("user"),
        "reachable": False,
        "login": False,
        "error": "",
        "password_sha256": hashlib.sha256(password.encode()).hexdigest(),
    }
    try:
        with socket.create_connection((host, port), timeout=3) as conn:
            result["reachable"] = True
            if engine == "redis":
                conn.settimeout(3)
                check_redis(conn, info, result)
                return result
    except OSError as e:
        result["error"] = f"connect: {e}"
        return result
    if engine == "postgres":
        cmd = [
            "psql",
            "-h",
            host,
            "-p",
            str(port),
            "-U",
            info.get("user") or "postgres",
            "-d",
            info.get("database") or "postgres",
            "-tAc",
            "select 1",
        ]
        env = {**os.environ, "PGPASSWORD": password, "PGCONNECT_TIMEOUT": "5"}
    else:
        cmd = [
            "mariadb",
            "-h",
            host,
            "-P",
            str(port),
            "-u",
            info.get("user") or "root",
            "--connect-timeout=5",
            "-N",
            "-e",
            "select 1",
            info.get("database") or "",
        ]
        env = {**os.environ, "MYSQL_PWD": password}
    try:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=15, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        result["error"] = f"login: {e}"
        return result
    result["login"] = done.returncode == 0 and done.stdout.strip() == "1"
    result["error"] = "" if result["login"] else done.stderr.strip()[:300]
    return result


def redis_call(reader, conn: socket.socket, *args: str) -> str:
    """One command in RESP; the reply as text (`-ERR ...` for an error, "" for nil)."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    conn.sendall(b"".join(parts))
    line = reader.readline().decode(errors="replace").rstrip("\r\n")
    if line.startswith("$"):
        size = int(line[1:])
        if size < 0:
            return ""
        return reader.read(size + 2)[:-2].decode(errors="replace")
    return line


def check_redis(conn: socket.socket, info: dict, result: dict) -> None:
    reader = conn.makefile("rb")
    user, password, prefix = info.get("user"), info.get("password") or "", info["prefix"]
    if password:
        answer = (
            redis_call(reader, conn, "AUTH", user, password)
            if user
            else redis_call(reader, conn, "AUTH", password)
        )
        if answer != "+OK":
            result["error"] = f"AUTH refused: {answer}"
            return
    answer = redis_call(reader, conn, "PING")
    if answer != "+PONG":
        result["error"] = answer
        return
    if not prefix:
        result["login"] = True
        return
    value = f"{socket.gethostname()} {time.time():.0f}"
    result["prefix"] = prefix
    written = redis_call(reader, conn, "SET", f"{prefix}standin-check", value)
    read = redis_call(reader, conn, "GET", f"{prefix}standin-check")
    result["prefix_ok"] = written == "+OK" and read == value
    outside = redis_call(reader, conn, "SET", "standin-outside-prefix", value)
    result["outside_refused"] = outside.startswith("-NOPERM")
    result["outside_answer"] = outside[:200]
    result["login"] = result["prefix_ok"] and result["outside_refused"]
    if not result["login"]:
        result["error"] = f"prefix check: SET {written[:100]}, outside {outside[:100]}"


def status() -> dict:
    needs = json.loads(os.environ.get("STANDIN_DATABASES") or "[]") or GUESSES
    databases = []
    for need in needs:
        info = describe(need)
        if info is not None:
            databases.append(check(info))
    return {
        "standin": True,
        "app": os.environ.get("STANDIN_APP"),
        "image": os.environ.get("STANDIN_IMAGE"),
        "hostname": socket.gethostname(),
        "volumes": VOLUMES,
        "databases": databases,
        "databases_ok": all(d["reachable"] and d["login"] for d in databases),
    }


class Handler(BaseHTTPRequestHandler):
    server_version = "homelab-standin/1"

    def _send(self, code: int, body: bytes, kind: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        path = urlparse(self.path).path
        if path == "/standin/status":
            self._send(200, json.dumps(status(), indent=2).encode(), "application/json")
        elif path == os.environ.get("STANDIN_HEALTH", "/"):
            self._send(200, b"ok\n", "text/plain")
        else:
            app = os.environ.get("STANDIN_APP", "app")
            self._send(200, f"<h1>{app} (lab stand-in)</h1>\n".encode(), "text/html")

    do_HEAD = do_GET

    def log_message(self, fmt: str, *args) -> None:
        pass


def serve_udp(port: int) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", port))
    while True:
        data, peer = sock.recvfrom(2048)
        sock.sendto(data, peer)


def main() -> None:
    write_volumes()
    servers = []
    for item in filter(None, os.environ.get("STANDIN_PORTS", "80/tcp").split(",")):
        number, _, protocol = item.partition("/")
        if protocol == "udp":
            threading.Thread(target=serve_udp, args=(int(number),), daemon=True).start()
        else:
            servers.append(ThreadingHTTPServer(("0.0.0.0", int(number)), Handler))
    for server in servers[1:]:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    log(f"listening on {os.environ.get('STANDIN_PORTS')}, volumes {VOLUMES}")
    if servers:
        servers[0].serve_forever()
    else:
        threading.Event().wait()


if __name__ == "__main__":
    main()
