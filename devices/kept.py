"""What stays open on a device between polls, over its one SSH connection.

A poll used to open two things per run: a new SSH session that started the user's login
shell, which started `sh` for the metrics script (about 16 ms of the device's CPU on a lab
device, most of a poll's cost there), and a Docker API request through docker-py's HTTP
stack. Both are now kept open by the connection manager (devices.ssh) for as long as the
connection lives:

- `KeptShell`: one `sh` reading commands from its stdin. The caller's functions are sent
  once (the prelude); a call sends one command line and reads until a marker line with a
  fresh random nonce. Nothing is installed on the device: the shell is a child of the SSH
  session and ends with it (sshd closes its stdin). A call that fails or times out closes
  the shell; the next call starts a new one.
- `DockerHTTP`: the Docker API over a kept `docker system dial-stdio` channel, spoken to
  with the standard library's http.client (the same wire docker-py uses, without
  requests/urllib3 on top).

Both are used by one thread at a time (their own lock).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import secrets
import threading
import time

import paramiko

# The API version we ask for (Docker 20.10 and later speak it).
DOCKER_API_VERSION = "1.41"


class ShellGone(paramiko.SSHException):
    """The kept shell ended (or never answered) before the call finished."""


class KeptShell:
    def __init__(self, transport: paramiko.Transport, prelude: str, *, timeout: float) -> None:
        self.transport = transport
        self.prelude = prelude
        self.lock = threading.Lock()
        self._buffer = b""
        self.channel = transport.open_session(timeout=timeout)
        try:
            # The login shell runs this line and gives way to sh; stderr is dropped on the
            # device, so nothing piles up unread in the channel.
            self.channel.exec_command("exec sh")
            self._exchange("exec 2>/dev/null\n" + prelude, timeout=timeout)
        except BaseException:
            self.close()
            raise

    @property
    def alive(self) -> bool:
        return not self.channel.closed and not self.channel.eof_received

    def call(self, command: str, *, timeout: float) -> str:
        """Run one command line in the shell; returns what it printed to stdout."""
        with self.lock:
            try:
                return self._exchange(command, timeout=timeout)
            except BaseException:
                self.close()
                raise

    def _exchange(self, command: str, *, timeout: float) -> str:
        nonce = secrets.token_hex(8)
        marker = f"\n@@kept-done {nonce}\n".encode()
        # The marker printf runs whatever the command did, so a failing command still ends.
        self.channel.sendall(f"{command}\nprintf '\\n@@kept-done %s\\n' {nonce}\n".encode())
        deadline = time.monotonic() + timeout
        buffer = self._buffer
        while True:
            end = buffer.find(marker)
            if end >= 0:
                self._buffer = buffer[end + len(marker) :]
                return buffer[:end].decode("utf-8", "replace")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                from devices.ssh import CommandTimeout

                raise CommandTimeout(
                    f"The command did not finish within {timeout:g} s.", reason="timeout"
                )
            self.channel.settimeout(remaining)
            try:
                data = self.channel.recv(65536)
            except TimeoutError:
                continue
            if not data:
                raise ShellGone("The kept shell on the device ended.")
            buffer += data

    def close(self) -> None:
        with contextlib.suppress(Exception):  # a dead channel may fail to close: gone anyway
            self.channel.close()


class DockerHTTP(http.client.HTTPConnection):
    """http.client over a `docker system dial-stdio` channel of the transport."""

    def __init__(self, transport: paramiko.Transport, *, timeout: float) -> None:
        super().__init__("docker", timeout=timeout)
        self.transport = transport
        self.lock = threading.Lock()

    def connect(self) -> None:
        channel = self.transport.open_session(timeout=self.timeout)
        channel.settimeout(self.timeout)
        channel.exec_command("docker system dial-stdio")
        self.sock = channel

    def get(self, path: str) -> tuple[dict, object]:
        """GET /v<version><path>; returns (headers, decoded JSON). Raises on a non-2xx."""
        with self.lock:
            try:
                self.request("GET", f"/v{DOCKER_API_VERSION}{path}")
                response = self.getresponse()
                body = response.read()
            except BaseException:
                self.close()
                raise
            if response.will_close:
                self.close()
        if not 200 <= response.status < 300:
            raise http.client.HTTPException(f"Docker answered {response.status} for {path}")
        return dict(response.headers), json.loads(body)


def build_docker_client(get_transport, *, timeout: int = 60):
    """A docker-py client whose every HTTP connection is a channel on our transport.

    Each channel runs `docker system dial-stdio` (what docker-py's ssh:// support does,
    minus its own SSHClient, ~/.ssh/config and known_hosts); urllib3 keeps it open, so
    later requests cost one round trip.
    """
    import docker
    from docker.transport.basehttpadapter import BaseHTTPAdapter
    from docker.transport.sshconn import SSHConnection, SSHConnectionPool
    from urllib3._collections import RecentlyUsedContainer

    class Pool(SSHConnectionPool):
        def __init__(self) -> None:
            super().__init__(ssh_client=None, timeout=timeout, maxsize=4, host=None)

        def _new_conn(self):
            return SSHConnection(get_transport(), self.timeout, None)

    class Adapter(BaseHTTPAdapter):
        def __init__(self) -> None:
            self.pools = RecentlyUsedContainer(4, dispose_func=lambda pool: pool.close())
            super().__init__()

        def get_connection(self, url, proxies=None):
            with self.pools.lock:
                pool = self.pools.get(url)
                if pool is None:
                    pool = self.pools[url] = Pool()
                return pool

    # A placeholder TCP address keeps docker-py from building its own SSH client; the
    # adapter mounted below carries every request. No request is made before mounting.
    client = docker.DockerClient(
        base_url="tcp://127.0.0.1:9", version=DOCKER_API_VERSION, timeout=timeout
    )
    api = client.api
    # The requests go through our SSH channel: no proxy from the environment applies, and
    # looking them up costs a scan of os.environ on every request.
    api.trust_env = False
    api.mount("http+docker://ssh", Adapter())
    api._unmount("http://", "https://")
    api.base_url = "http+docker://ssh"
    api._version = api._retrieve_server_version()
    return client
