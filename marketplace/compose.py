"""Render a recipe's final compose file as data.

The renderer never builds YAML with string templates: it deep-copies the recipe's parsed
compose file, changes values in the data, and dumps the result with sorted keys, so the
same recipe and config always give the same bytes.

Compose interpolates `$` in every string of a compose file (compose issue #11058: a
generated password containing `$abc` silently lost that part). Every string the platform
writes (generated secrets, env overrides, labels) therefore has each `$` doubled to `$$`,
which compose turns back into one literal `$`. The recipe's own `${VAR:-default}`
placeholders are allowed only for its declared secrets and are replaced by their values.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from devices.compose import escape_dollars
from homelab.core.secrets import generate_secret

if TYPE_CHECKING:  # pragma: no cover
    from marketplace.recipes import Recipe

ENV_NAME_RE = re.compile(r"^[A-Z_][A-Z0-9_]*\Z")
PROJECT_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}\Z")
INSTANCE_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,30}\Z")
# control characters (tab and newline excepted) and YAML's extra line breaks: they do not
# survive a YAML round trip everywhere and have no place in an env value or a secret
_FORBIDDEN_CHARS_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ufeff]")

# `$$` (an escaped dollar), `${NAME}` / `${NAME:-default}` / `${NAME-default}` /
# `${NAME:?error}` / `${NAME?error}` / `${NAME:+alt}`, `$NAME`, or a lone `$`.
_DOLLAR_RE = re.compile(
    r"\$\$"
    r"|\$\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
    r"|\$"
)

LABEL_PROJECT = "homelab.project"
LABEL_APP = "homelab.app"
LABEL_INSTANCE = "homelab.instance"
LABEL_SERVICE = "homelab.service"


class RenderError(ValueError):
    """A config value the renderer cannot use. `field` names it ("ports.web", "env.TZ")."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class RenderConfig:
    """What a deployment chooses. Everything is optional: the defaults give a working app.

    * instance: the instance name (an app may run several times on one device).
    * ports: {manifest port name: host port}; unnamed ports keep their default host port.
    * env: extra or changed environment variables of the main service, written literally.
    * secrets: {secret name: value} for every secret the manifest declares
      (see `generate_secrets`).
    * memory_limit_mb: the most memory the main service may use (compose `mem_limit`);
      None: no limit. At least the app's minimum RAM.
    """

    instance: str = "default"
    ports: Mapping[str, int] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict)
    memory_limit_mb: int | None = None


# A memory limit above this is a typing mistake (1 TiB).
MEMORY_LIMIT_MAX_MB = 1024 * 1024


# ------------------------------------------------------------------------------- secrets
def generate_secrets(recipe: Recipe) -> dict[str, str]:
    """One fresh value per secret the recipe declares (store them; do not regenerate)."""
    return {s.name: generate_secret(s.length, s.alphabet) for s in recipe.manifest.secrets}


# -------------------------------------------------------------------------- interpolation
@dataclass(frozen=True)
class DollarUse:
    """One `$` construct found in a compose string."""

    text: str
    variable: str | None  # None for `$$` and for a lone `$`
    escaped: bool  # `$$`


def dollar_uses(value: str) -> list[DollarUse]:
    out = []
    for m in _DOLLAR_RE.finditer(value):
        name = m.group("braced") or m.group("bare")
        out.append(DollarUse(m.group(0), name, m.group(0) == "$$"))
    return out


def walk_strings(data: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every string value in a parsed compose file with its path ("services.db.image")."""
    if isinstance(data, str):
        yield path, data
    elif isinstance(data, Mapping):
        for key, value in data.items():
            yield from walk_strings(value, f"{path}.{key}" if path else str(key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from walk_strings(value, f"{path}[{index}]")


def _substitute(value: str, values: Mapping[str, str]) -> str:
    """Replace `${NAME...}` / `$NAME` of the given variables by their escaped values."""

    def repl(m: re.Match) -> str:
        name = m.group("braced") or m.group("bare")
        if name is not None and name in values:
            return escape_dollars(values[name])
        return m.group(0)

    return _DOLLAR_RE.sub(repl, value)


def _map_strings(data: Any, fn) -> Any:
    if isinstance(data, str):
        return fn(data)
    if isinstance(data, dict):
        return {key: _map_strings(value, fn) for key, value in data.items()}
    if isinstance(data, list):
        return [_map_strings(value, fn) for value in data]
    return data


# ------------------------------------------------------------------------ compose shapes
def env_as_dict(environment: Any) -> dict[str, str | None]:
    """A service's `environment` (mapping or KEY=VALUE list) as a dict."""
    if environment is None:
        return {}
    if isinstance(environment, Mapping):
        return {str(k): (None if v is None else _scalar_text(v)) for k, v in environment.items()}
    out: dict[str, str | None] = {}
    for item in environment:
        key, sep, value = str(item).partition("=")
        out[key] = value if sep else None
    return out


def labels_as_dict(labels: Any) -> dict[str, str]:
    if labels is None:
        return {}
    if isinstance(labels, Mapping):
        return {str(k): _scalar_text(v) for k, v in labels.items()}
    out = {}
    for item in labels:
        key, _, value = str(item).partition("=")
        out[key] = value
    return out


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class PublishedPort:
    """One entry of a service's `ports`, short or long syntax."""

    container_port: int
    host_port: int | None
    protocol: str = "tcp"
    host_ip: str | None = None


def parse_port(entry: Any) -> PublishedPort:
    """Parse "8080:80", "127.0.0.1:53:53/udp", "80" or {target, published, protocol}.
    Ranges are not supported (a recipe names each port). Raises ValueError."""
    if isinstance(entry, Mapping):
        target = entry.get("target")
        published = entry.get("published")
        protocol = str(entry.get("protocol", "tcp"))
        if not isinstance(target, int):
            raise ValueError("a long-syntax port needs an integer `target`")
        return PublishedPort(
            target,
            int(published) if published is not None else None,
            protocol,
            entry.get("host_ip"),
        )
    text = str(entry)
    text, _, protocol = text.partition("/")
    protocol = protocol or "tcp"
    parts = text.rsplit(":", 2)
    if any(not p.isdigit() for p in parts[-2:] if p) or "-" in text:
        raise ValueError(f"cannot read the port {entry!r}; write it as HOST:CONTAINER")
    if len(parts) == 1:
        return PublishedPort(int(parts[0]), None, protocol)
    if len(parts) == 2:
        return PublishedPort(int(parts[1]), int(parts[0]) if parts[0] else None, protocol)
    return PublishedPort(int(parts[2]), int(parts[1]) if parts[1] else None, protocol, parts[0])


def _format_port(port: PublishedPort) -> str:
    text = f"{port.host_port}:{port.container_port}"
    if port.host_ip:
        text = f"{port.host_ip}:{text}"
    return text if port.protocol == "tcp" else f"{text}/{port.protocol}"


# ------------------------------------------------------------------------------ renderer
def _check_config(recipe: Recipe, project: str, config: RenderConfig) -> None:
    manifest = recipe.manifest
    if not isinstance(project, str) or not PROJECT_RE.match(project):
        raise RenderError(
            "project",
            "must be 1-63 lowercase letters, digits, '-' or '_', starting with a letter or digit",
        )
    if not isinstance(config.instance, str) or not INSTANCE_RE.match(config.instance):
        raise RenderError(
            "instance",
            "must be 1-31 lowercase letters, digits or '-', starting with a letter or digit",
        )
    port_names = {p.name for p in manifest.ports}
    for name, host_port in config.ports.items():
        if name not in port_names:
            known = ", ".join(sorted(port_names)) or "none"
            raise RenderError(f"ports.{name}", f"this app has no port named so (known: {known})")
        if isinstance(host_port, bool) or not isinstance(host_port, int):
            raise RenderError(f"ports.{name}", "must be a whole number between 1 and 65535")
        if not 1 <= host_port <= 65535:
            raise RenderError(f"ports.{name}", "must be between 1 and 65535")
    for name, value in config.env.items():
        if not isinstance(name, str) or not ENV_NAME_RE.match(name):
            raise RenderError(
                f"env.{name}",
                "an environment variable name may only use A-Z, 0-9 and '_' and must not "
                "start with a digit",
            )
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise RenderError(f"env.{name}", "must be text or a whole number")
        if _FORBIDDEN_CHARS_RE.search(str(value)):
            raise RenderError(f"env.{name}", "must not contain control characters")
    limit = config.memory_limit_mb
    if limit is not None:
        minimum = manifest.requirements.ram_min_mb
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise RenderError("memory_limit_mb", "must be a whole number of megabytes")
        if not minimum <= limit <= MEMORY_LIMIT_MAX_MB:
            raise RenderError(
                "memory_limit_mb",
                f"must be at least {minimum} MB (what {manifest.name} needs to run) and at "
                f"most {MEMORY_LIMIT_MAX_MB} MB",
            )
    declared = {s.name: s for s in manifest.secrets}
    for name in config.secrets:
        if name not in declared:
            raise RenderError(f"secrets.{name}", "this app declares no secret of that name")
    for name in declared:
        value = config.secrets.get(name)
        if value is None:
            raise RenderError(
                f"secrets.{name}", "no value given; generate one with generate_secrets(recipe)"
            )
        if not isinstance(value, str) or value == "" or _FORBIDDEN_CHARS_RE.search(value):
            raise RenderError(
                f"secrets.{name}", "must be non-empty text without control characters"
            )


def render_compose(recipe: Recipe, *, project: str, config: RenderConfig) -> dict:
    """The final compose file for one deployment, as data.

    1. Validate the project, instance, port choices, env names/values and secrets
       (RenderError names the field).
    2. Deep-copy the recipe's compose data; set `name: <project>`.
    3. Replace the declared secrets' `${VAR...}` placeholders by their values, escaped.
    4. Publish each manifest port on its chosen (or default) host port.
    5. Add the env overrides to the main service, escaped, and its memory limit.
    6. Label every service with project, app, instance and service.
    7. Check that no unescaped `$` is left for compose to interpolate.
    """
    _check_config(recipe, project, config)
    manifest = recipe.manifest
    data: dict = copy.deepcopy(dict(recipe.compose))
    data.pop("version", None)  # obsolete; compose v2 warns about it
    data["name"] = project

    secret_values: dict[str, str] = {}
    for secret in manifest.secrets:
        for env_name in secret.env:
            secret_values[env_name] = config.secrets[secret.name]
    data = _map_strings(data, lambda s: _substitute(s, secret_values))

    host_ports = {
        (p.container_port, p.protocol): config.ports.get(p.name, p.default_host_port)
        for p in manifest.ports
    }
    claimed: dict[tuple[int, str], str] = {}
    for p in manifest.ports:
        key = (host_ports[(p.container_port, p.protocol)], p.protocol)
        if key in claimed:
            raise RenderError(
                f"ports.{p.name}",
                f"host port {key[0]}/{key[1]} is already used by port {claimed[key]!r}",
            )
        claimed[key] = p.name

    services: dict = data["services"]
    for service_name in sorted(services):
        service = services[service_name]
        if service.get("ports"):
            rendered = []
            for entry in service["ports"]:
                port = parse_port(entry)
                host = host_ports.get((port.container_port, port.protocol), port.host_port)
                rendered.append(
                    _format_port(
                        PublishedPort(port.container_port, host, port.protocol, port.host_ip)
                    )
                )
            service["ports"] = rendered
        if "environment" in service:
            service["environment"] = env_as_dict(service["environment"])
        labels = labels_as_dict(service.get("labels"))
        labels.update(
            {
                LABEL_PROJECT: escape_dollars(project),
                LABEL_APP: escape_dollars(recipe.slug),
                LABEL_INSTANCE: escape_dollars(config.instance),
                LABEL_SERVICE: escape_dollars(service_name),
            }
        )
        service["labels"] = labels

    if config.env:
        main = services[manifest.main_service]
        environment = env_as_dict(main.get("environment"))
        for name in sorted(config.env):
            environment[name] = escape_dollars(_scalar_text(config.env[name]))
        main["environment"] = environment
    if config.memory_limit_mb is not None:
        services[manifest.main_service]["mem_limit"] = f"{config.memory_limit_mb}m"

    for path, value in walk_strings(data):
        for use in dollar_uses(value):
            if not use.escaped:
                raise RenderError(
                    path,
                    f"{use.text!r} would be interpolated by compose; the recipe may only use "
                    "${VAR} for its declared secrets",
                )
    return data
