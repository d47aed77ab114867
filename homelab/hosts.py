"""The machine's own names and addresses: the host names the web server answers to by default.

Read without connecting anywhere: the host name, its fully qualified form, and the addresses
of the machine's interfaces (from `ip -j addr`, or what the host name resolves to locally when
`ip` is missing). IPv6 addresses are given in brackets, the way they appear in a Host header.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import socket
import subprocess

LOCAL = ["localhost", "127.0.0.1", "[::1]"]


def _as_host(address: str) -> str | None:
    address = address.split("%", 1)[0]  # fe80::1%eth0: the zone is not part of a Host header
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return None
    return f"[{parsed.compressed}]" if parsed.version == 6 else parsed.compressed


def _interface_addresses() -> list[str]:
    ip = shutil.which("ip")
    if ip:
        try:
            result = subprocess.run(
                [ip, "-j", "addr"], capture_output=True, text=True, timeout=3, check=True
            )
            return [
                info["local"]
                for interface in json.loads(result.stdout or "[]")
                for info in interface.get("addr_info", [])
                if info.get("local")
            ]
        except (OSError, subprocess.SubprocessError, ValueError, KeyError, TypeError):
            pass
    try:
        return [item[4][0] for item in socket.getaddrinfo(socket.gethostname(), None)]
    except OSError:
        return []


def own_hosts() -> list[str]:
    """localhost, the loopback addresses, the machine's names and its interfaces' addresses."""
    names = list(LOCAL)
    for name in (socket.gethostname(), socket.getfqdn()):
        if name:
            names.append(name.lower())
    for address in _interface_addresses():
        host = _as_host(address)
        if host:
            names.append(host)
    return list(dict.fromkeys(names))
