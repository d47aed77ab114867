"""The front door with a REAL Caddy on loopback: our configuration, our certificates.

Two small upstream web servers stand in for apps; Caddy (Debian's package) runs the
generated JSON on 127.0.0.1. A client that trusts only the homelab CA reaches each app by
name (SNI and Host = the name, the connection to 127.0.0.1) and the certificate verifies.
Then one route is removed with `caddy reload` while a loop of requests to the other app
sees no failure.

Needs the `caddy` binary: skipped without it on a developer's machine, a failure in CI
(CI=true), where .ci/run installs it.
"""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from proxy.ca import ca_create, leaf_issue
from proxy.caddy import Route, caddy_json

CADDY = shutil.which("caddy")
IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture(scope="module")
def caddy_binary() -> str:
    if CADDY is None:
        message = "caddy is not installed (apt-get install caddy): the front door's tests need it"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return CADDY


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _upstream(name: str) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = f"{name} answers; host={self.headers.get('Host')}\n".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class _ByName(http.client.HTTPSConnection):
    """HTTPS to 127.0.0.1, with SNI, Host and certificate check for `host` (the app's name)."""

    def connect(self):
        sock = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def _get(
    name: str, port: int, context: ssl.SSLContext, host: str | None = None
) -> tuple[int, str, dict]:
    connection = _ByName(name, port, context=context, timeout=5)
    try:
        connection.connect()
        certificate = connection.sock.getpeercert()
        connection.request("GET", "/", headers={"Host": host} if host else {})
        response = connection.getresponse()
        return response.status, response.read().decode(), certificate
    finally:
        connection.close()


class FrontDoor:
    def __init__(self, binary: str, folder: Path, authority, routes: list[Route]):
        self.binary, self.folder = binary, folder
        self.https_port, self.admin_port = _free_port(), _free_port()
        if routes:  # else the test writes its own certificate
            leaf = leaf_issue(authority=authority, hostnames=[r.hostname for r in routes])
            (folder / "front-door.crt").write_text(leaf.certificate_pem)
            (folder / "front-door.key").write_text(leaf.private_key_pem)
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(folder),
            "XDG_DATA_HOME": str(folder / "data"),
            "XDG_CONFIG_HOME": str(folder / "config"),
        }
        self.process: subprocess.Popen | None = None

    def write(self, routes: list[Route], file_name: str) -> Path:
        path = self.folder / file_name
        path.write_text(
            caddy_json(
                routes,
                certificate_path=str(self.folder / "front-door.crt"),
                key_path=str(self.folder / "front-door.key"),
                https_listen=f"127.0.0.1:{self.https_port}",
                http_listen=None,
                admin_listen=f"127.0.0.1:{self.admin_port}",
                storage_path=str(self.folder / "storage"),
            )
        )
        return path

    def start(self, config: Path) -> None:
        self.log = open(self.folder / "caddy.log", "wb")
        self.process = subprocess.Popen(
            [self.binary, "run", "--config", str(config)],
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.output()
            try:
                socket.create_connection(("127.0.0.1", self.https_port), 0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"caddy did not listen within 15 s:\n{self.output()}")

    def reload(self, config: Path) -> subprocess.CompletedProcess:
        return subprocess.run(
            [
                self.binary,
                "reload",
                "--config",
                str(config),
                "--address",
                f"127.0.0.1:{self.admin_port}",
            ],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    def output(self) -> str:
        return (self.folder / "caddy.log").read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.log.close()


@pytest.fixture
def apps():
    servers = {name: _upstream(name) for name in ("alpha", "beta")}
    yield servers
    for server in servers.values():
        server.shutdown()
        server.server_close()


@pytest.fixture
def authority():
    return ca_create(hostname="test-control-plane")


@pytest.fixture
def trusting(authority) -> ssl.SSLContext:
    """A client that trusts the homelab CA and nothing else."""
    # with cadata, the system's own authorities are not loaded
    return ssl.create_default_context(cadata=authority.certificate_pem)


@pytest.fixture
def front_door(caddy_binary, tmp_path, authority, apps):
    routes = [
        Route("alpha.home.arpa", "127.0.0.1", apps["alpha"].server_address[1]),
        Route("beta.home.arpa", "127.0.0.1", apps["beta"].server_address[1]),
    ]
    door = FrontDoor(caddy_binary, tmp_path, authority, routes)
    door.routes = routes
    door.start(door.write(routes, "caddy.json"))
    yield door
    door.stop()


def test_each_app_answers_by_name_with_a_certificate_that_verifies(front_door, trusting):
    for name in ("alpha", "beta"):
        status, body, certificate = _get(f"{name}.home.arpa", front_door.https_port, trusting)
        assert status == 200, front_door.output()
        assert body.startswith(f"{name} answers")
        assert f"host={name}.home.arpa" in body
        issuer = dict(part[0] for part in certificate["issuer"])
        assert issuer["commonName"] == "Homelab CA (test-control-plane)"


def test_a_client_that_does_not_trust_the_homelab_ca_is_refused(front_door):
    with pytest.raises(ssl.SSLCertVerificationError):
        _get("alpha.home.arpa", front_door.https_port, ssl.create_default_context())


def test_another_name_gets_the_plain_404(front_door, trusting):
    status, body, _ = _get(
        "alpha.home.arpa", front_door.https_port, trusting, host="nobody.home.arpa"
    )
    assert status == 404
    assert "No app has this name" in body


def test_a_name_without_a_certificate_gets_no_answer_meant_for_another_app(front_door, trusting):
    trusting.check_hostname = False
    with pytest.raises(ssl.SSLError):
        _get("nobody.home.arpa", front_door.https_port, trusting)


def test_removing_a_route_reloads_without_dropping_the_other_app(front_door, trusting):
    failures: list[str] = []
    answered = 0
    stop = threading.Event()

    def loop():
        nonlocal answered
        while not stop.is_set():
            try:
                status, body, _ = _get("alpha.home.arpa", front_door.https_port, trusting)
            except Exception as exc:  # every kind of failure counts: that is the test
                failures.append(f"{type(exc).__name__}: {exc}")
                continue
            if status != 200 or not body.startswith("alpha answers"):
                failures.append(f"{status}: {body[:80]}")
            answered += 1

    worker = threading.Thread(target=loop)
    worker.start()
    try:
        time.sleep(0.5)
        before = answered
        config = front_door.write([front_door.routes[0]], "caddy-without-beta.json")
        result = front_door.reload(config)
        time.sleep(0.5)
    finally:
        stop.set()
        worker.join(10)
    assert result.returncode == 0, result.stderr + front_door.output()
    assert before > 0 and answered > before + 5, (before, answered)
    assert not failures, failures[:5]
    trusting.check_hostname = False
    status, body, _ = _get("beta.home.arpa", front_door.https_port, trusting)
    assert status == 404, body


# --- from the database: the product's own files, through the same real Caddy --------------


@pytest.mark.django_db
def test_the_front_door_files_from_live_apps_serve_each_app_and_follow_a_removal(
    caddy_binary, tmp_path, apps
):
    from marketplace.models import Deployment, DeploymentStatus
    from proxy import services
    from tests.unit.scheduling.factories import make_device

    device = make_device("loopback", ram_free_gb=2, address="127.0.0.1")
    deployments = {
        slug: Deployment.objects.create(
            slug=slug,
            app_name=slug,
            device=device,
            project=f"hl-{slug}-default",
            status=DeploymentStatus.RUNNING,
            config={"ports": {"web": apps[name].server_address[1]}},
        )
        for slug, name in (("vaultwarden", "alpha"), ("n8n", "beta"))
    }
    services.proxy_settings_save(domain="home.arpa", device_id=device.pk, mode="internal_ca")
    door = FrontDoor(caddy_binary, tmp_path, services.certificate_authority(), [])
    listen = {
        "https_listen": f"127.0.0.1:{door.https_port}",
        "http_listen": None,
        "admin_listen": f"127.0.0.1:{door.admin_port}",
        "storage_path": str(tmp_path / "storage"),
    }

    def write(file_name: str) -> Path:
        files = services.front_door_files(
            certificate_path=str(tmp_path / "front-door.crt"),
            key_path=str(tmp_path / "front-door.key"),
            **listen,
        )
        (tmp_path / "front-door.crt").write_text(files.certificate_pem)
        (tmp_path / "front-door.key").write_text(files.private_key_pem)
        (tmp_path / file_name).write_text(files.config_json)
        return tmp_path / file_name

    trusting = ssl.create_default_context(cadata=services.ca_certificate_pem())
    door.start(write("caddy.json"))
    try:
        assert _get("vaultwarden.home.arpa", door.https_port, trusting)[1].startswith("alpha")
        assert _get("n8n.home.arpa", door.https_port, trusting)[1].startswith("beta")
        Deployment.objects.filter(pk=deployments["n8n"].pk).update(status=DeploymentStatus.REMOVED)
        result = door.reload(write("caddy-after-removal.json"))
        assert result.returncode == 0, result.stderr + door.output()
        assert _get("vaultwarden.home.arpa", door.https_port, trusting)[0] == 200
        # the new certificate no longer carries the removed app's name
        with pytest.raises(ssl.SSLError):
            _get("n8n.home.arpa", door.https_port, trusting)
    finally:
        door.stop()
