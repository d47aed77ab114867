"""Export and import of the whole homelab as one YAML file.

The file holds definitions, never secrets: devices without their keys or host keys, apps
with their ports and settings (secret settings stay masked), the shared database servers
(engine and version). Importing it on a new install:

1. Reads the YAML safely and checks `version` (only FORMAT_VERSION is known).
2. Checks every field with the models' own validators (names match in full, so a newline
   or a shell character is refused) and collects every problem; nothing is saved when one
   field is wrong (the answer names it).
3. In one transaction, records what is missing: a device not here yet becomes a "device to
   add" (it needs its login once, and the product has no device without a key); an app not
   running yet becomes an "app to deploy" (an app needs an added device that answers).
   Shared database servers are not created: each comes back by itself when the first app
   that uses it is deployed.
4. Answers what it recorded, what was already here, and what the person must still do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import yaml
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from devices.models import Device
from fleet.models import AppToDeploy, DeviceToAdd
from homelab.core.errors import HomelabError
from homelab.core.masking import MASK
from marketplace.models import Deployment
from marketplace.services import SECRET_SETTING_RE, recipe_for
from pooling.models import Engine, SharedInstance

FORMAT_VERSION = 1
MAX_FILE_BYTES = 2 * 1024 * 1024
DEVICE_KEYS = ("name", "address", "port", "username", "type", "location", "always_on")
APP_KEYS = ("slug", "instance", "device", "config")
SHARED_KEYS = ("device", "engine", "version")
TOP_KEYS = ("version", "exported", "devices", "apps", "shared_databases")
CONFIG_KEYS = ("ports", "env", "secret_env", "bundled_databases")
SETTING_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
PORT_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
VERSION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,39}")
# a setting's value: printable text on one line (it ends up in a compose file)
SETTING_VALUE_RE = re.compile(r"[^\x00-\x1f\x7f]{0,1000}")


class ImportRefused(HomelabError):
    """A file that cannot be imported; `field` names the first problem, `problems` all."""

    def __init__(self, problems: list[tuple[str, str]]):
        first_field, first_message = problems[0]
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        super().__init__(
            f"{first_field}: {first_message}{more}",
            field=first_field,
            code=422,
            fixes=["Correct the file and import it again; nothing was saved."],
        )
        self.problems = problems

    def as_json(self) -> dict:
        return {
            **super().as_json(),
            "errors": [{"field": f, "message": m} for f, m in self.problems],
        }


# --- Export ------------------------------------------------------------------------------


def _public_config(config: dict) -> dict:
    """Ports and settings with every secret setting masked (again, whatever was stored)."""
    config = config if isinstance(config, dict) else {}
    marked = set(config.get("secret_env") or ())
    out: dict = {}
    if config.get("ports"):
        out["ports"] = {str(k): int(v) for k, v in config["ports"].items()}
    if config.get("env"):
        out["env"] = {
            str(k): (MASK if (k in marked or SECRET_SETTING_RE.search(str(k))) and v else str(v))
            for k, v in config["env"].items()
        }
    if marked:
        out["secret_env"] = sorted(marked)
    if config.get("bundled_databases"):
        out["bundled_databases"] = True
    return out


def homelab_export() -> dict:
    """The homelab's definitions as one document (see the module docstring for the shape)."""
    devices = [
        {
            "name": d.name,
            "address": d.address,
            "port": d.port,
            "username": d.username,
            "type": d.device_type,
            "location": d.location,
            "always_on": d.always_on,
        }
        for d in Device.objects.order_by("name")
    ]
    names = {d["name"] for d in devices}
    for waiting in DeviceToAdd.objects.exclude(name__in=names):
        devices.append(
            {
                "name": waiting.name,
                "address": waiting.address,
                "port": waiting.port,
                "username": waiting.username,
                "type": waiting.device_type,
                "location": waiting.location,
                "always_on": waiting.always_on,
            }
        )
    apps = [
        {
            "slug": d.slug,
            "instance": d.instance,
            "device": d.device.name,
            "config": _public_config(d.config),
        }
        for d in Deployment.objects.live()
        .select_related("device")
        .order_by("device__name", "slug", "instance")
    ]
    running = {(a["slug"], a["instance"], a["device"]) for a in apps}
    for waiting in AppToDeploy.objects.all():
        if (waiting.slug, waiting.instance, waiting.device_name) not in running:
            apps.append(
                {
                    "slug": waiting.slug,
                    "instance": waiting.instance,
                    "device": waiting.device_name,
                    "config": _public_config(waiting.config),
                }
            )
    shared = [
        {"device": s.device.name, "engine": s.engine, "version": s.version}
        for s in SharedInstance.objects.exclude(status=SharedInstance.Status.REMOVED)
        .select_related("device")
        .order_by("device__name", "engine")
    ]
    return {
        "version": FORMAT_VERSION,
        "exported": timezone.now().replace(microsecond=0).isoformat(),
        "devices": sorted(devices, key=lambda d: d["name"]),
        "apps": apps,
        "shared_databases": shared,
    }


def homelab_export_yaml() -> str:
    header = (
        "# The homelab's definitions: devices (without keys), apps (secret settings masked)\n"
        "# and shared database servers. Import it on Settings -> Export/Import.\n"
    )
    return header + yaml.safe_dump(
        homelab_export(), sort_keys=False, allow_unicode=True, default_flow_style=False
    )


# --- Import: checking -------------------------------------------------------------------


@dataclass
class _Checked:
    devices: list[dict] = field(default_factory=list)
    apps: list[dict] = field(default_factory=list)
    shared: list[dict] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)

    def refuse(self, where: str, message: str) -> None:
        self.problems.append((where, message))


def _shown(value) -> str:
    """A key or value of the file, safe to repeat in an answer: short, one line, and never
    the string form of a nested structure (YAML aliases can make those enormous)."""
    if not isinstance(value, (str, int, float, bool)) or value is None:
        return f"a {type(value).__name__}"
    text = re.sub(r"[^A-Za-z0-9_.@:/ -]", "?", str(value))
    return text[:40] + ("..." if len(text) > 40 else "")


def _model_field(checked: _Checked, model, name: str, value, where: str):
    """VALUE cleaned by MODEL's own field NAME (its validators and choices), or None."""
    try:
        return model._meta.get_field(name).clean(value, None)
    except ValidationError as error:
        checked.refuse(where, " ".join(error.messages))
        return None


def _mapping(checked: _Checked, value, where: str, allowed: tuple[str, ...]) -> dict | None:
    if not isinstance(value, dict):
        checked.refuse(where, "must be a mapping of settings (key: value).")
        return None
    for key in value:
        if key not in allowed:
            checked.refuse(
                f"{where}.{_shown(key)}", f"not a known setting (known: {', '.join(allowed)})."
            )
    return value


def _text(checked: _Checked, value, where: str, *, required: bool = True) -> str | None:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        checked.refuse(where, "must be text." if required else "must be text or left out.")
        return None
    return value


def _check_device(checked: _Checked, row, where: str) -> None:
    row = _mapping(checked, row, where, DEVICE_KEYS)
    if row is None:
        return
    clean: dict = {}
    for key, model_field in (("name", "name"), ("address", "address"), ("username", "username")):
        text = _text(checked, row.get(key), f"{where}.{key}")
        if text is not None:
            clean[model_field] = _model_field(checked, Device, model_field, text, f"{where}.{key}")
    location = _text(checked, row.get("location"), f"{where}.location", required=False)
    if location is not None:
        clean["location"] = _model_field(checked, Device, "location", location, f"{where}.location")
    port = row.get("port", 22)
    if not isinstance(port, int) or isinstance(port, bool):
        checked.refuse(f"{where}.port", "must be a whole number from 1 to 65535.")
    else:
        clean["port"] = _model_field(checked, Device, "port", port, f"{where}.port")
    device_type = _text(checked, row.get("type", "server"), f"{where}.type")
    if device_type is not None:
        clean["device_type"] = _model_field(
            checked, Device, "device_type", device_type, f"{where}.type"
        )
    always_on = row.get("always_on", True)
    if not isinstance(always_on, bool):
        checked.refuse(f"{where}.always_on", "must be true or false.")
    clean["always_on"] = always_on
    checked.devices.append(clean)


def _check_config(checked: _Checked, config, where: str) -> dict:
    if config is None:
        return {}
    config = _mapping(checked, config, where, CONFIG_KEYS)
    if config is None:
        return {}
    clean: dict = {}
    ports = config.get("ports") or {}
    if not isinstance(ports, dict):
        checked.refuse(f"{where}.ports", "must be a mapping of port names to numbers.")
    else:
        for name, number in ports.items():
            if not isinstance(name, str) or not PORT_NAME_RE.fullmatch(name):
                checked.refuse(
                    f"{where}.ports",
                    f"{_shown(name)} is not a port name (letters, digits, . _ -).",
                )
            elif (
                not isinstance(number, int) or isinstance(number, bool) or not 1 <= number <= 65535
            ):
                checked.refuse(f"{where}.ports.{name}", "must be a whole number from 1 to 65535.")
            else:
                clean.setdefault("ports", {})[name] = number
    env = config.get("env") or {}
    if not isinstance(env, dict):
        checked.refuse(f"{where}.env", "must be a mapping of setting names to values.")
    else:
        for name, value in env.items():
            if not isinstance(name, str) or not SETTING_NAME_RE.fullmatch(name):
                checked.refuse(
                    f"{where}.env",
                    f"{_shown(name)} is not a setting name (letters, digits and _).",
                )
            elif not isinstance(value, (str, int, float, bool)) or not SETTING_VALUE_RE.fullmatch(
                str(value)
            ):
                checked.refuse(
                    f"{where}.env.{name}", "must be text on one line (up to 1000 characters)."
                )
            else:
                clean.setdefault("env", {})[name] = (
                    str(value).lower() if isinstance(value, bool) else str(value)
                )
    marked = config.get("secret_env") or []
    if not isinstance(marked, list) or not all(
        isinstance(n, str) and n in clean.get("env", {}) for n in marked
    ):
        checked.refuse(f"{where}.secret_env", "must list names of settings given under env.")
    elif marked:
        clean["secret_env"] = sorted(set(marked))
    bundled = config.get("bundled_databases", False)
    if not isinstance(bundled, bool):
        checked.refuse(f"{where}.bundled_databases", "must be true or false.")
    elif bundled:
        clean["bundled_databases"] = True
    return _public_config(clean)  # a secret value typed into the file is never stored


def _check_app(checked: _Checked, row, where: str) -> None:
    row = _mapping(checked, row, where, APP_KEYS)
    if row is None:
        return
    clean: dict = {}
    slug = _text(checked, row.get("slug"), f"{where}.slug")
    if slug is not None:
        clean["slug"] = _model_field(checked, AppToDeploy, "slug", slug, f"{where}.slug")
        if clean["slug"]:
            try:
                recipe_for(clean["slug"])
            except HomelabError:
                checked.refuse(
                    f"{where}.slug", f"there is no app {clean['slug']} in this install's catalog."
                )
    instance = _text(checked, row.get("instance", "default"), f"{where}.instance")
    if instance is not None:
        clean["instance"] = _model_field(
            checked, AppToDeploy, "instance", instance, f"{where}.instance"
        )
    device = _text(checked, row.get("device"), f"{where}.device")
    if device is not None:
        clean["device_name"] = _model_field(
            checked, AppToDeploy, "device_name", device, f"{where}.device"
        )
    clean["config"] = _check_config(checked, row.get("config"), f"{where}.config")
    checked.apps.append(clean)


def _check_shared(checked: _Checked, row, where: str) -> None:
    row = _mapping(checked, row, where, SHARED_KEYS)
    if row is None:
        return
    device = _text(checked, row.get("device"), f"{where}.device")
    if device is not None:
        _model_field(checked, Device, "name", device, f"{where}.device")
    engine = row.get("engine")
    if engine not in Engine.values:
        checked.refuse(f"{where}.engine", f"must be one of {', '.join(Engine.values)}.")
    version = row.get("version")
    if not isinstance(version, str) or not VERSION_RE.fullmatch(version):
        checked.refuse(f"{where}.version", "must be a version like 16-alpine.")
    checked.shared.append({"device": device, "engine": engine, "version": version})


def _list(checked: _Checked, document: dict, key: str) -> list:
    value = document.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        checked.refuse(key, "must be a list.")
        return []
    return value


def homelab_check(text: str | bytes) -> _Checked:
    """Every problem of an export file (see homelab_import), or its clean definitions."""
    if isinstance(text, bytes):
        if len(text) > MAX_FILE_BYTES:
            raise ImportRefused([("file", "is larger than 2 MB; this is not an export file.")])
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise ImportRefused(
                [("file", "is not UTF-8 text; choose the .yaml file an export gave.")]
            ) from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        line = f" near line {where.line + 1}" if where is not None else ""
        raise ImportRefused(
            [("file", f"is not valid YAML{line}; choose the file an export gave.")]
        ) from None
    if not isinstance(document, dict):
        raise ImportRefused(
            [("file", "is not an export file: it has no version, devices or apps.")]
        )
    version = document.get("version")
    if "version" not in document:
        raise ImportRefused(
            [("version", f"is missing; an export file says version: {FORMAT_VERSION}.")]
        )
    if version != FORMAT_VERSION or isinstance(version, bool):
        shown = _shown(version)
        raise ImportRefused(
            [
                (
                    "version",
                    f"{shown} is not a version this install knows (it reads version {FORMAT_VERSION}).",
                )
            ]
        )
    checked = _Checked()
    for key in document:
        if key not in TOP_KEYS:
            checked.refuse(_shown(key), f"not a known section (known: {', '.join(TOP_KEYS)}).")
    for index, row in enumerate(_list(checked, document, "devices")):
        _check_device(checked, row, f"devices[{index}]")
    for index, row in enumerate(_list(checked, document, "apps")):
        _check_app(checked, row, f"apps[{index}]")
    for index, row in enumerate(_list(checked, document, "shared_databases")):
        _check_shared(checked, row, f"shared_databases[{index}]")
    if not checked.problems:
        _check_references(checked)
    if checked.problems:
        raise ImportRefused(checked.problems)
    return checked


def _check_references(checked: _Checked) -> None:
    names = [d["name"] for d in checked.devices]
    for index, name in enumerate(names):
        if name in names[:index]:
            checked.refuse(f"devices[{index}].name", f"{name} appears twice in the file.")
    known = set(names) | set(Device.objects.values_list("name", flat=True))
    seen = set()
    for index, app in enumerate(checked.apps):
        if app["device_name"] not in known:
            checked.refuse(
                f"apps[{index}].device",
                f"there is no device named {app['device_name']} in the file or in this homelab.",
            )
        identity = (app["slug"], app["instance"], app["device_name"])
        if identity in seen:
            checked.refuse(
                f"apps[{index}].instance", "the same app and instance appear twice on this device."
            )
        seen.add(identity)


# --- Import: recording ------------------------------------------------------------------


@dataclass
class ImportResult:
    devices_to_add: list[str] = field(default_factory=list)
    devices_already_here: list[str] = field(default_factory=list)
    apps_to_deploy: list[str] = field(default_factory=list)
    apps_already_here: list[str] = field(default_factory=list)
    shared_databases: list[str] = field(default_factory=list)

    def to_do(self) -> list[str]:
        steps = []
        if self.devices_to_add:
            steps.append(
                "Add these devices with their login (Add device), once each: "
                + ", ".join(self.devices_to_add)
                + ". The file holds no keys or passwords, so none of them was added yet."
            )
        if self.apps_to_deploy:
            steps.append(
                "Deploy these apps once their device is added and online: "
                + ", ".join(self.apps_to_deploy)
                + ". Settings marked secret were not in the file: type them again when you deploy."
            )
        if self.shared_databases:
            steps.append(
                "Nothing to do for the shared database servers: each starts again when the "
                "first app that uses it is deployed."
            )
        if not steps:
            steps.append("Nothing: everything in the file is already here.")
        return steps

    def as_json(self) -> dict:
        return {
            "devices_to_add": self.devices_to_add,
            "devices_already_here": self.devices_already_here,
            "apps_to_deploy": self.apps_to_deploy,
            "apps_already_here": self.apps_already_here,
            "shared_databases": self.shared_databases,
            "to_do": self.to_do(),
        }


def _app_words(app: dict) -> str:
    instance = "" if app["instance"] == "default" else f" ({app['instance']})"
    return f"{app['slug']}{instance} on {app['device_name']}"


def homelab_import(*, text: str | bytes) -> ImportResult:
    """Check an export file whole, then record what is missing in one transaction."""
    checked = homelab_check(text)
    result = ImportResult()
    with transaction.atomic():
        existing = set(Device.objects.values_list("name", flat=True))
        for device in checked.devices:
            if device["name"] in existing:
                result.devices_already_here.append(device["name"])
                continue
            DeviceToAdd.objects.update_or_create(name=device["name"], defaults=device)
            result.devices_to_add.append(device["name"])
        for app in checked.apps:
            running = Deployment.objects.live().filter(
                slug=app["slug"], instance=app["instance"], device__name=app["device_name"]
            )
            if running.exists():
                result.apps_already_here.append(_app_words(app))
                continue
            AppToDeploy.objects.update_or_create(
                slug=app["slug"],
                instance=app["instance"],
                device_name=app["device_name"],
                defaults={"config": app["config"]},
            )
            result.apps_to_deploy.append(_app_words(app))
        for shared in checked.shared:
            result.shared_databases.append(
                f"{Engine(shared['engine']).label} on {shared['device']}"
            )
    return result
