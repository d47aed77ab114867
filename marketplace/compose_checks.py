"""A recipe's compose file checked against itself and its manifest: a table of rules.

`compose_problems()` works in three steps:

1. The file's shape: a mapping with at least one service (else that is the only problem),
   top-level `volumes` a mapping.
2. The facts every rule may need, gathered once (`_Facts`): the services, the declared
   volumes, the ports each service publishes and where each named volume is mounted.
3. Every rule of `_RULES` in order, each yielding (file, field, problem) in plain words;
   `_each_service` runs `_SERVICE_RULES` on every service the same way.

A new check is one small function added to one of the two tables.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from devices.compose import service_mounts
from marketplace.compose import (
    ENV_NAME_RE,
    DollarUse,
    dollar_uses,
    env_as_dict,
    parse_port,
    walk_strings,
)
from marketplace.manifest import ALLOWED_BIND_MOUNTS, COMPOSE_FILE, MANIFEST_FILE, Manifest

Problem = tuple[str, str, str]  # (file, field, problem)

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE_RE = re.compile(
    rf"^(?P<name>(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?{_COMPONENT}(?:/{_COMPONENT})*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[a-f0-9]{64}))?\Z"
)
_SERVICE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*\Z")
# Accepted besides NAME_IN_CAPITALS: letters of either case, digits, '_' and '.'.
_LOOSE_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*\Z")


def image_problem(image: Any) -> str | None:
    """None when `image` is a valid reference pinned to a tag or digest, else why not."""
    if not isinstance(image, str):
        return "must be an image name such as postgres:16-alpine"
    m = _IMAGE_RE.match(image)
    if not m:
        return f"{image!r} is not a valid image reference"
    if m.group("digest"):
        return None
    if not m.group("tag"):
        return f"{image!r} has no tag; pin a version such as {image}:1.2.3"
    if m.group("tag") == "latest":
        return f"{image!r} uses :latest; pin a version so every install gets the same app"
    return None


# --------------------------------------------------------------------------------- facts
@dataclass(frozen=True)
class _Facts:
    manifest: Manifest
    compose: dict
    services: dict
    volumes: dict  # the top-level named volumes ({} when not a mapping)
    published: dict[tuple[int, str], tuple[str, int | None]]  # (port, protocol): (service, host)
    mounts: dict[str, set[str]]  # named volume: the container paths it is mounted at
    dollar_uses: list[tuple[str, DollarUse]]  # (path, use) of every `$` that is not `$$`

    def services_text(self) -> str:
        return ", ".join(sorted(map(str, self.services)))


def _facts(m: Manifest, compose: dict, services: dict, volumes: dict) -> _Facts:
    published: dict[tuple[int, str], tuple[str, int | None]] = {}
    mounts: dict[str, set[str]] = {}
    for name, service in services.items():
        if not isinstance(service, dict):
            continue
        for entry in service.get("ports") or []:
            try:
                port = parse_port(entry)
            except (ValueError, TypeError):
                continue
            published[(port.container_port, port.protocol)] = (name, port.host_port)
        for source, target, kind in service_mounts(service):
            if kind == "volume" and source:
                mounts.setdefault(source, set()).add(target)
    uses = [
        (path, use)
        for path, value in walk_strings(compose)
        for use in dollar_uses(value)
        if not use.escaped
    ]
    return _Facts(m, compose, services, volumes, published, mounts, uses)


# ------------------------------------------------------------------- per-service rules
ServiceRule = Callable[[_Facts, str, dict], Iterable[Problem]]


def _not_allowed(keys: Mapping[str, str]) -> ServiceRule:
    """A rule refusing each of `keys` in a service, with its reason."""

    def rule(facts: _Facts, where: str, service: dict) -> Iterator[Problem]:
        for key, reason in keys.items():
            if key in service:
                yield COMPOSE_FILE, f"{where}.{key}", reason

    return rule


def _pinned_image(facts: _Facts, where: str, service: dict) -> Iterator[Problem]:
    problem = image_problem(service.get("image"))
    if problem:
        yield COMPOSE_FILE, f"{where}.image", problem


def _readable_ports(facts: _Facts, where: str, service: dict) -> Iterator[Problem]:
    for i, entry in enumerate(service.get("ports") or []):
        try:
            parse_port(entry)
        except (ValueError, TypeError) as e:
            yield COMPOSE_FILE, f"{where}.ports[{i}]", str(e)


def _environment_names(facts: _Facts, where: str, service: dict) -> Iterator[Problem]:
    env = service.get("environment")
    if env is not None and not isinstance(env, dict | list):
        yield COMPOSE_FILE, f"{where}.environment", "must be a mapping or a list of NAME=value"
        return
    for key in env_as_dict(env):
        if not ENV_NAME_RE.match(key) and not _LOOSE_ENV_NAME_RE.match(key):
            yield COMPOSE_FILE, f"{where}.environment.{key}", "is not a valid variable name"


def _declared_mounts(facts: _Facts, where: str, service: dict) -> Iterator[Problem]:
    for source, _target, kind in service_mounts(service):
        if kind == "bind" and source not in ALLOWED_BIND_MOUNTS:
            yield (
                COMPOSE_FILE,
                f"{where}.volumes",
                f"bind-mounts {source!r} from the device; use a named volume (allowed host paths: {', '.join(ALLOWED_BIND_MOUNTS)})",
            )
        elif kind == "volume" and source and source not in facts.volumes:
            yield (
                COMPOSE_FILE,
                f"{where}.volumes",
                f"uses volume {source!r}, which is not under the top-level volumes",
            )


_SERVICE_RULES: tuple[ServiceRule, ...] = (
    _not_allowed({"build": "recipes cannot build images; name a published image"}),
    _pinned_image,
    _not_allowed(
        dict.fromkeys(
            ("container_name", "network_mode", "pid", "privileged"),
            "is not allowed: it breaks running several instances or isolation",
        )
    ),
    _readable_ports,
    _environment_names,
    _declared_mounts,
)


# ----------------------------------------------------------------------- file rules
def _each_service(facts: _Facts) -> Iterator[Problem]:
    for name, service in facts.services.items():
        where = f"services.{name}"
        if not _SERVICE_NAME_RE.match(str(name)):
            yield (
                COMPOSE_FILE,
                where,
                "a service name may use lowercase letters, digits, '-' and '_'",
            )
        if not isinstance(service, dict):
            yield COMPOSE_FILE, where, "must be a mapping"
            continue
        for rule in _SERVICE_RULES:
            yield from rule(facts, where, service)


def _main_service_exists(facts: _Facts) -> Iterator[Problem]:
    m = facts.manifest
    if m.main_service not in facts.services:
        yield (
            MANIFEST_FILE,
            "main_service",
            f"{m.main_service!r} is not a service of compose.yaml (services: {facts.services_text()})",
        )


def _manifest_ports_published(facts: _Facts) -> Iterator[Problem]:
    for i, p in enumerate(facts.manifest.ports):
        found = facts.published.get((p.container_port, p.protocol))
        if found is None:
            yield (
                MANIFEST_FILE,
                f"ports[{i}]",
                f'compose.yaml publishes no {p.container_port}/{p.protocol}; add "{p.default_host_port}:{p.container_port}" to a service\'s ports',
            )
        elif found[1] != p.default_host_port:
            yield (
                MANIFEST_FILE,
                f"ports[{i}].default_host_port",
                f"is {p.default_host_port} but compose.yaml publishes {p.container_port} on {found[1]}; make them equal",
            )


def _published_ports_declared(facts: _Facts) -> Iterator[Problem]:
    declared = {(p.container_port, p.protocol) for p in facts.manifest.ports}
    for (container_port, protocol), (service_name, _) in sorted(facts.published.items()):
        if (container_port, protocol) not in declared:
            yield (
                COMPOSE_FILE,
                f"services.{service_name}.ports",
                f"publishes {container_port}/{protocol}, which the manifest's ports do not declare",
            )


def _manifest_volumes_mounted(facts: _Facts) -> Iterator[Problem]:
    for i, v in enumerate(facts.manifest.volumes):
        if v.name not in facts.volumes:
            yield MANIFEST_FILE, f"volumes[{i}].name", f"{v.name!r} is not a volume of compose.yaml"
        elif v.container_path not in facts.mounts.get(v.name, set()):
            yield (
                MANIFEST_FILE,
                f"volumes[{i}].container_path",
                f"no service mounts {v.name!r} at {v.container_path}",
            )


def _compose_volumes_declared(facts: _Facts) -> Iterator[Problem]:
    names = {v.name for v in facts.manifest.volumes}
    for name in facts.volumes:
        if name not in names:
            yield (
                COMPOSE_FILE,
                f"volumes.{name}",
                "is not declared in the manifest's volumes (say whether it holds data)",
            )


def _variables_are_secrets(facts: _Facts) -> Iterator[Problem]:
    secret_vars = {env for s in facts.manifest.secrets for env in s.env}
    for path, use in facts.dollar_uses:
        if use.variable is None:
            yield COMPOSE_FILE, path, "has a lone '$'; write '$$' for a literal dollar sign"
        elif use.variable not in secret_vars:
            yield (
                COMPOSE_FILE,
                path,
                f"uses ${{{use.variable}}}, which is not the env of a declared secret; write the value itself",
            )


def _secrets_are_used(facts: _Facts) -> Iterator[Problem]:
    used = {use.variable for _path, use in facts.dollar_uses if use.variable is not None}
    for i, s in enumerate(facts.manifest.secrets):
        for env in s.env:
            if env not in used:
                yield (
                    MANIFEST_FILE,
                    f"secrets[{i}].env",
                    f"{env} is never used as ${{{env}}} in compose.yaml",
                )


def _database_needs_wired(facts: _Facts) -> Iterator[Problem]:
    m, services = facts.manifest, facts.services
    for i, need in enumerate(m.requires_database):
        target = need.service or m.main_service
        if target not in services:
            yield (
                MANIFEST_FILE,
                f"requires_database[{i}].service",
                f"{target!r} is not a service of compose.yaml",
            )
        else:
            env = env_as_dict(services[target].get("environment"))
            for role, var in need.env.names().items():
                if var not in env:
                    yield (
                        MANIFEST_FILE,
                        f"requires_database[{i}].env.{role}",
                        f"{var} is not in the environment of service {target!r}",
                    )
        if need.bundled_service and need.bundled_service not in services:
            yield (
                MANIFEST_FILE,
                f"requires_database[{i}].bundled_service",
                f"{need.bundled_service!r} is not a service of compose.yaml",
            )


def _health_check_on_main_service(facts: _Facts) -> Iterator[Problem]:
    m = facts.manifest
    publisher = facts.published.get((m.health_check.port, "tcp"))
    if m.main_service in facts.services and publisher and publisher[0] != m.main_service:
        yield (
            MANIFEST_FILE,
            "health_check.port",
            f"{m.health_check.port} is published by {publisher[0]!r}, not the main service",
        )


_RULES: tuple[Callable[[_Facts], Iterable[Problem]], ...] = (
    _each_service,
    _main_service_exists,
    _manifest_ports_published,
    _published_ports_declared,
    _manifest_volumes_mounted,
    _compose_volumes_declared,
    _variables_are_secrets,
    _secrets_are_used,
    _database_needs_wired,
    _health_check_on_main_service,
)


def compose_problems(m: Manifest, compose: Any) -> list[Problem]:
    """The compose file against itself and the manifest. Returns (file, field, problem)."""
    if not isinstance(compose, dict):
        return [(COMPOSE_FILE, "", "must be a compose file: a mapping with `services`")]
    services = compose.get("services")
    if not isinstance(services, dict) or not services:
        return [(COMPOSE_FILE, "services", "must name at least one service")]
    problems: list[Problem] = []
    volumes = compose.get("volumes") or {}
    if not isinstance(volumes, dict):
        problems.append((COMPOSE_FILE, "volumes", "must be a mapping of named volumes"))
        volumes = {}
    facts = _facts(m, compose, services, volumes)
    for rule in _RULES:
        problems.extend(rule(facts))
    return problems
