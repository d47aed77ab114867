"""The front door's settings, certificates and app names: what changes them, and the
reads the page, the API and (later) the front door's deploy job need.

- `proxy_settings_save` keeps the domain, the front-door device and the mode, and makes
  the homelab CA the first time.
- `app_name_set` gives one app the name a person chose (or its default back).
- `routes()` lists (name, device address, port) for every live app with a web page: what
  the front door's configuration is generated from (`front_door_files`).
- `name_checks` says, per name, which DNS record to add and whether it resolves.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from django.db import transaction

from devices.models import Device
from homelab.core.errors import HomelabError
from marketplace.models import Deployment, DeploymentStatus
from marketplace.preflight import host_ports
from marketplace.recipes import load_catalog
from proxy import ca
from proxy.caddy import Route, caddy_json
from proxy.models import AppAddress, ProxyMode, ProxySettings
from proxy.names import default_hostname, domain_problem, hostname_problem, is_under

RESOLVE_TIMEOUT_SECONDS = 1.5


class ProxyError(HomelabError):
    """Input the front door's settings or names cannot take; `field` names what to change."""


# ------------------------------------------------------------------------------ settings
def proxy_settings() -> ProxySettings:
    """The one settings row (made with the defaults the first time it is asked for)."""
    row = ProxySettings.objects.select_related("device").order_by("pk").first()
    return row or ProxySettings.objects.create()


def proxy_settings_save(*, domain: str, device_id: int | None, mode: str) -> ProxySettings:
    """Keep the home domain, the front-door device and the certificate mode.

    1. Check each value (the domain with a full match; the device exists; the mode is one
       we can serve today).
    2. Save them, and make the homelab CA if there is none yet.
    """
    if not isinstance(domain, str) or domain_problem(domain):
        raise ProxyError(domain_problem(domain if isinstance(domain, str) else ""), field="domain")
    device = None
    if device_id is not None:
        device = Device.objects.filter(pk=device_id).first()
        if device is None:
            raise ProxyError(
                f"There is no device with id {device_id}.",
                field="device_id",
                code=404,
                fixes=["Choose one of the devices listed on the Devices page."],
            )
    if mode not in ProxyMode.values:
        raise ProxyError(
            f"'{str(mode)[:40]}' is not a certificate mode; use internal_ca or acme_dns.",
            field="mode",
        )
    if mode == ProxyMode.ACME_DNS:
        raise ProxyError(
            "Publicly trusted certificates for your own domain (ACME with a DNS challenge) "
            "are not available yet.",
            field="mode",
            fixes=["Use the homelab's own certificates (internal_ca) for now."],
        )
    with transaction.atomic():
        row = proxy_settings()
        row.domain, row.device, row.mode = domain, device, mode
        row.save()
    certificate_authority()
    return row


def certificate_authority() -> ca.KeyPair:
    """The homelab CA, made the first time (its key encrypted at rest in the settings row)."""
    with transaction.atomic():
        row = proxy_settings()
        row = ProxySettings.objects.select_for_update().get(pk=row.pk)
        if not row.ca_certificate or not row.ca_private_key:
            pair = ca.ca_create(hostname=socket.gethostname())
            row.ca_certificate, row.ca_private_key = pair.certificate_pem, pair.private_key_pem
            row.save(update_fields=["ca_certificate", "ca_private_key", "updated"])
        return ca.KeyPair(certificate_pem=row.ca_certificate, private_key_pem=row.ca_private_key)


def ca_certificate_pem() -> str:
    """The CA's public certificate, for people to trust (never the key)."""
    return certificate_authority().certificate_pem


def front_door_device_choices() -> list[Device]:
    """Devices for the front door, the best first: always on, then online, then by name."""
    devices = list(Device.objects.order_by("name"))
    return sorted(devices, key=lambda d: (not d.always_on, d.status != "online", d.name))


# --------------------------------------------------------------------------------- names
@dataclass(frozen=True)
class AppName:
    deployment: Deployment
    hostname: str
    custom: bool  # a person chose it (an AppAddress row); else the default name
    upstream_address: str
    upstream_port: int

    @property
    def url(self) -> str:
        return f"https://{self.hostname}"


def _web_deployments() -> list[tuple[Deployment, int]]:
    """(deployment, host port of its web page) of every live app that has one, oldest first."""
    catalog = load_catalog()
    found = []
    queryset = (
        Deployment.objects.live()
        .exclude(status=DeploymentStatus.REMOVING)
        .select_related("device", "app_address")
        .order_by("pk")
    )
    for deployment in queryset:
        recipe = catalog.recipes.get(deployment.slug)
        web = recipe.manifest.web_port if recipe is not None else None
        if web is None or web.protocol != "tcp":
            continue
        chosen = {name: port for name, port, _ in host_ports(recipe, deployment.config)}
        found.append((deployment, chosen[web.name]))
    return found


def _custom_name(deployment: Deployment) -> str | None:
    try:
        return deployment.app_address.hostname
    except AppAddress.DoesNotExist:
        return None


def app_names() -> list[AppName]:
    """Every live app with a web page and its name: the one a person chose, else
    `<app>[-<copy>].<domain>`; when two apps would share a default name, the newer one
    also carries its device's name (then its id), so every name is one app's."""
    domain = proxy_settings().domain
    web = _web_deployments()
    taken = {name for d, _ in web if (name := _custom_name(d))}
    names = []
    for deployment, port in web:
        hostname = _custom_name(deployment)
        custom = hostname is not None
        if hostname is None:
            base = default_hostname(
                slug=deployment.slug, instance=deployment.instance, domain=domain
            )
            label, rest = base.split(".", 1)
            candidates = [
                base,
                default_hostname(
                    slug=f"{label}-{deployment.device.name}", instance="", domain=domain
                ),
                f"{label}-{deployment.pk}.{rest}",
            ]
            hostname = next((c for c in candidates if c not in taken), None)
            copy = 2
            while hostname is None:  # all three taken (by chosen names): count on
                candidate = f"{label}-{deployment.pk}-{copy}.{rest}"
                hostname = candidate if candidate not in taken else None
                copy += 1
            taken.add(hostname)
        names.append(
            AppName(
                deployment=deployment,
                hostname=hostname,
                custom=custom,
                upstream_address=deployment.device.address,
                upstream_port=port,
            )
        )
    return sorted(names, key=lambda n: n.hostname)


def routes() -> list[Route]:
    """(name, device address, web port) of every live app with a web page: the front
    door's routes, across devices."""
    return [Route(n.hostname, n.upstream_address, n.upstream_port) for n in app_names()]


def app_name_set(*, deployment_id: int, hostname: str) -> AppName:
    """Give an app the name a person chose; an empty name gives it its default back."""
    deployment = Deployment.objects.live().filter(pk=deployment_id).first()
    if deployment is None:
        raise ProxyError(
            f"There is no installed app with id {deployment_id}.",
            field="deployment_id",
            code=404,
            fixes=["Pick one from the list on the App addresses page."],
        )
    current = {n.deployment.pk: n for n in app_names()}
    if deployment.pk not in current:
        raise ProxyError(
            f"{deployment.app_name} has no web page, so it needs no address.", field="hostname"
        )
    if not isinstance(hostname, str):
        raise ProxyError("The name must be text, like vaultwarden.home.arpa.", field="hostname")
    if hostname == "":
        AppAddress.objects.filter(deployment=deployment).delete()
    else:
        problem = hostname_problem(hostname)
        if problem:
            raise ProxyError(problem, field="hostname")
        holder = next(
            (
                n
                for n in current.values()
                if n.hostname == hostname and n.deployment.pk != deployment.pk
            ),
            None,
        )
        if holder is not None:
            raise ProxyError(
                f"{hostname} is already the name of {holder.deployment.app_name} on "
                f"{holder.deployment.device.name}.",
                field="hostname",
                code=409,
                fixes=["Choose another name, or rename that app first."],
            )
        AppAddress.objects.update_or_create(deployment=deployment, defaults={"hostname": hostname})
    return next(n for n in app_names() if n.deployment.pk == deployment.pk)


# ------------------------------------------------------------------ the front door's files
@dataclass(frozen=True)
class FrontDoorFiles:
    """What the front door's device needs: its configuration and its certificate."""

    config_json: str
    certificate_pem: str
    private_key_pem: str = field(repr=False)  # a secret: never logged, shown or answered


def front_door_files(
    *, certificate_path: str, key_path: str, **listen: str | None
) -> FrontDoorFiles:
    """Caddy's configuration for today's routes and a certificate for every name in it,
    signed by the homelab CA. `listen`: https_listen, http_listen, admin_listen,
    storage_path (see proxy.caddy.caddy_config)."""
    current = routes()
    names = [r.hostname for r in current] or [f"front-door.{proxy_settings().domain}"]
    leaf = ca.leaf_issue(authority=certificate_authority(), hostnames=names)
    return FrontDoorFiles(
        config_json=caddy_json(
            current, certificate_path=certificate_path, key_path=key_path, **listen
        ),
        certificate_pem=leaf.certificate_pem,
        private_key_pem=leaf.private_key_pem,
    )


# ------------------------------------------------------------------------------------ DNS
@dataclass(frozen=True)
class NameCheck:
    name: AppName
    record_type: str  # A, AAAA or CNAME; "" without a front-door device
    record_value: str
    state: str  # ok | elsewhere | missing | slow | not_checked | no_front_door
    resolved: tuple[str, ...]
    words: str


def _record_for(address: str) -> str:
    try:
        return "AAAA" if ipaddress.ip_address(address).version == 6 else "A"
    except ValueError:
        return "CNAME"


def _resolve_all(
    hostnames: list[str], *, timeout_seconds: float, resolver: Callable
) -> dict[str, tuple[str, ...] | None]:
    """{name: addresses, () when it does not resolve, None when no answer came in time}."""

    def one(name: str) -> tuple[str, ...]:
        try:
            infos = resolver(name, None, 0, socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            return ()
        return tuple(sorted({info[4][0] for info in infos}))

    results: dict[str, tuple[str, ...] | None] = dict.fromkeys(hostnames)
    if not hostnames:
        return results
    # one deadline for all of them: a page waits `timeout_seconds` at most, however many
    pool = ThreadPoolExecutor(max_workers=min(16, len(hostnames)), thread_name_prefix="resolve")
    futures = {name: pool.submit(one, name) for name in hostnames}
    try:
        wait(futures.values(), timeout=timeout_seconds)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    for name, future in futures.items():
        if future.done() and not future.cancelled():
            results[name] = future.result()
    return results


def name_checks(
    *, timeout_seconds: float = RESOLVE_TIMEOUT_SECONDS, resolver: Callable | None = None
) -> list[NameCheck]:
    """Per app name: the DNS record to add (name -> front-door device) and whether the
    name resolves there. Only names under the home domain are looked up."""
    row = proxy_settings()
    names = app_names()
    device = row.device
    if device is None:
        return [
            NameCheck(n, "", "", "no_front_door", (), "Choose the front-door device first.")
            for n in names
        ]
    record_type = _record_for(device.address)
    lookup = [n.hostname for n in names if is_under(n.hostname, row.domain)]
    if record_type == "CNAME":
        lookup.append(device.address)
    answers = _resolve_all(
        lookup, timeout_seconds=timeout_seconds, resolver=resolver or socket.getaddrinfo
    )
    door = set(answers.get(device.address) or ()) if record_type == "CNAME" else {device.address}
    checks = []
    for n in names:
        resolved = answers.get(n.hostname, ())
        if not is_under(n.hostname, row.domain):
            state, words = "not_checked", f"Not checked: it is outside {row.domain}."
        elif resolved is None:
            state, words = "slow", "The name server did not answer in time; try again later."
        elif not resolved:
            state, words = "missing", "Does not resolve yet: add the record."
        elif door and set(resolved) & door:
            state, words = "ok", f"Resolves to the front door ({device.name})."
        else:
            state = "elsewhere"
            words = (
                f"Resolves to {', '.join(resolved)}, not to the front door "
                f"({device.address}): change the record."
            )
        checks.append(NameCheck(n, record_type, device.address, state, resolved or (), words))
    return checks


def hosts_file_line() -> str:
    """One /etc/hosts line for every name, when the front door has an IP address; else ''."""
    row = proxy_settings()
    if row.device is None or _record_for(row.device.address) == "CNAME":
        return ""
    names = [n.hostname for n in app_names()]
    return f"{row.device.address} {' '.join(names)}" if names else ""
