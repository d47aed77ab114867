"""Discovery: find machines that answer SSH on a network the person names.

Only the network given is scanned, only port 22 (or the port given), with bounded
concurrency and a timeout per address; what each answers first (its SSH banner) is shown.
Manual address entry stays the primary path; this is a convenience.

Only home networks are scanned (RFC 1918, IPv6 unique local fc00::/7, link-local and
loopback) unless the person confirms another network is theirs (`confirm_public`), at most
DISCOVERY_MAX_HOSTS addresses, and each person runs one scan at a time and a few a minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import socket
import subprocess
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass

from django.conf import settings

from devices.models import Device
from devices.services import DeviceError


class DiscoveryError(DeviceError):
    """A network that cannot be scanned; the message says what to enter instead."""

    def __init__(self, message: str):
        super().__init__(message, device_status="invalid", field="cidr")


class DiscoveryBusy(DeviceError):
    """This person is already scanning, or scanned too often in the last minute."""

    def __init__(self, message: str):
        super().__init__(message, device_status="busy", field="cidr", code=429)


HOME_NETWORKS = [
    ipaddress.ip_network(text)
    for text in (
        "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",  # RFC 1918
        "169.254.0.0/16", "127.0.0.0/8",  # link-local, loopback
        "fc00::/7", "fe80::/10", "::1/128",  # unique local, link-local, loopback
    )
]


def is_home_network(network) -> bool:
    return any(
        network.version == home.version and network.subnet_of(home) for home in HOME_NETWORKS
    )


@dataclass
class Candidate:
    address: str
    port: int
    banner: str
    already_added: bool = False
    device_id: int | None = None
    device_name: str = ""


def parse_network(
    cidr: str, *, confirm_public: bool = False
) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    text = (cidr or "").strip()
    if not text:
        raise DiscoveryError("Enter a network to scan, like 192.168.1.0/24.")
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise DiscoveryError(
            f"{text!r} is not a network. Enter one like 192.168.1.0/24 (your home network)."
        ) from None
    size = network.num_addresses
    if size > settings.DISCOVERY_MAX_HOSTS:
        raise DiscoveryError(
            f"{network} has {size} addresses; at most {settings.DISCOVERY_MAX_HOSTS} can be "
            "scanned at once. Enter a smaller network, like a /24 (256 addresses)."
        )
    if not is_home_network(network) and not confirm_public:
        raise DiscoveryError(
            f"{network} is not a home network address (those start with 192.168., 10. or "
            "172.16-31.), so we did not scan it: scanning other people's machines is not "
            "allowed. If this network really is yours, confirm that and scan again."
        )
    return network


class _ScanLimiter:
    """One scan at a time per person, and at most DISCOVERY_SCANS_PER_MINUTE a minute."""

    def __init__(self):
        self._lock = threading.Lock()
        self._running: set[str] = set()
        self._started: dict[str, deque] = defaultdict(deque)

    @contextlib.contextmanager
    def slot(self, who: str):
        now = time.monotonic()
        limit = getattr(settings, "DISCOVERY_SCANS_PER_MINUTE", 5)
        with self._lock:
            if who in self._running:
                raise DiscoveryBusy(
                    "A scan you started is still running. Wait for its results, then try again."
                )
            started = self._started[who]
            while started and now - started[0] > 60:
                started.popleft()
            if len(started) >= limit:
                wait = int(60 - (now - started[0])) + 1
                raise DiscoveryBusy(
                    f"You scanned {limit} times in the last minute. Wait {wait} seconds, then "
                    "try again."
                )
            started.append(now)
            self._running.add(who)
        try:
            yield
        finally:
            with self._lock:
                self._running.discard(who)


scan_limiter = _ScanLimiter()


def _hosts(network) -> list[str]:
    hosts = list(network.hosts())
    if not hosts:  # /32 or /128 in old Pythons
        hosts = [network.network_address]
    return [str(h) for h in hosts]


async def _probe(
    address: str, port: int, semaphore: asyncio.Semaphore, timeout: float
) -> str | None:
    async with semaphore:
        writer = None
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(address, port), timeout)
            line = await asyncio.wait_for(reader.readline(), timeout)
        except (OSError, TimeoutError):
            return None
        finally:
            if writer is not None:
                writer.close()
                with contextlib.suppress(OSError, TimeoutError):
                    await asyncio.wait_for(writer.wait_closed(), 0.5)
        banner = line.decode("utf-8", "replace").strip()
        return banner[:200] if banner.startswith("SSH-") else None


async def discovery_scan_async(
    *, cidr: str, port: int = 22, confirm_public: bool = False
) -> list[Candidate]:
    network = parse_network(cidr, confirm_public=confirm_public)
    addresses = _hosts(network)
    semaphore = asyncio.Semaphore(settings.DISCOVERY_CONCURRENCY)
    timeout = settings.DISCOVERY_TIMEOUT_SECONDS
    banners = await asyncio.gather(*(_probe(a, port, semaphore, timeout) for a in addresses))
    return [
        Candidate(address=a, port=port, banner=b)
        for a, b in zip(addresses, banners, strict=False)
        if b
    ]


def discovery_scan(
    *, cidr: str, port: int = 22, confirm_public: bool = False, who: str | None = None
) -> list[Candidate]:
    """Scan `cidr` for SSH servers; mark the ones already added as devices.

    `who` (the person asking) is rate-limited: one scan at a time, a few a minute.
    """
    parse_network(cidr, confirm_public=confirm_public)  # refuse before taking a slot
    with scan_limiter.slot(who) if who else contextlib.nullcontext():
        scan = discovery_scan_async(cidr=cidr, port=port, confirm_public=confirm_public)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            candidates = asyncio.run(scan)
        else:  # called from async code: run the scan in its own loop on a helper thread
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(1) as pool:
                candidates = pool.submit(asyncio.run, scan).result()
    known = {
        (d.address, d.port): d
        for d in Device.objects.filter(address__in=[c.address for c in candidates])
    }
    for candidate in candidates:
        device = known.get((candidate.address, candidate.port))
        if device is not None:
            candidate.already_added = True
            candidate.device_id = device.pk
            candidate.device_name = device.name
    return candidates


def suggest_local_cidr() -> str:
    """The server's own IPv4 subnet (of the interface with the default route), or ""."""
    max_hosts = settings.DISCOVERY_MAX_HOSTS
    try:
        routes = json.loads(
            subprocess.run(
                ["ip", "-j", "route", "show", "default"],
                capture_output=True,
                text=True,
                timeout=3,
                check=False,
            ).stdout
            or "[]"
        )
        devices = [r.get("dev") for r in routes if r.get("dev")]
        addrs = json.loads(
            subprocess.run(
                ["ip", "-j", "-4", "addr", "show"],
                capture_output=True,
                text=True,
                timeout=3,
                check=False,
            ).stdout
            or "[]"
        )
        for interface in addrs:
            if devices and interface.get("ifname") not in devices:
                continue
            for info in interface.get("addr_info", []):
                if info.get("family") != "inet" or info.get("scope") != "global":
                    continue
                network = ipaddress.ip_interface(f"{info['local']}/{info['prefixlen']}").network
                if network.num_addresses > max_hosts:
                    network = ipaddress.ip_interface(f"{info['local']}/24").network
                return str(network)
    except (OSError, ValueError, subprocess.SubprocessError, KeyError):
        pass
    # Fallback: the address the kernel would use for outside traffic (no packet is sent).
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect(("192.0.2.1", 9))
            local = sock.getsockname()[0]
        if not local.startswith("127."):
            return str(ipaddress.ip_interface(f"{local}/24").network)
    except OSError:
        pass
    return ""
