"""Build the stand-in images the recipes name and put them where lab devices find them.

1. One base image, ``homelab-lab/standin-base:<hash>``: the stand-in rootfs (Debian 12
   with PostgreSQL 15, MariaDB 10.11, Redis 7 and their clients, python3; see rootfs.py)
   imported with ``docker import``; the tag hashes the package lists. On top,
   ``homelab-lab/standin-scripts:<hash>`` adds the entrypoints of ``standin/`` (a small
   layer: changing a script never re-pushes the big one).
2. Per image a recipe names, a thin layer ``homelab-lab/standin:<hash>`` (ENV,
   ENTRYPOINT, CMD only: no file layer), built with ``docker build`` from stdin:
   * postgres-like names (postgres, tensorchord/pgvecto-rs): PostgreSQL entrypoint;
   * mariadb / mysql: MariaDB entrypoint and ``healthcheck.sh``;
   * redis: Redis entrypoint;
   * everything else: the generic app server, told the recipe's ports, health path,
     volumes and database env vars.
3. Docker Hub names are pushed into the lab registry (every device's mirror); names of
   other registries (ghcr.io/...) cannot go through a Hub mirror, so they are
   ``docker load``ed into each running device instead. Both steps are skipped when the
   registry / device already has the same image id.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.lab import build as lab_build

from . import rootfs

HERE = Path(__file__).resolve().parent
SCRIPTS = HERE / "standin"
BASE_REPO = "homelab-lab/standin-base"
SCRIPTS_REPO = "homelab-lab/standin-scripts"
STANDIN_REPO = "homelab-lab/standin"
LABEL = lab_build.LABEL
# not needed by a stand-in and a quarter of the size: PostgreSQL's JIT and its LLVM
EXCLUDES = (
    "*/libLLVM-*",
    "*/libz3.so*",
    "./usr/lib/postgresql/15/lib/llvmjit*",
    "./usr/lib/postgresql/15/lib/bitcode",
)


@dataclass
class ImagePlan:
    """What one image name needs to stand in for."""

    name: str
    role: str  # postgres, mariadb, redis or app
    app: str = ""
    ports: set[str] = field(default_factory=set)  # "80/tcp"
    health: str = "/"
    volumes: set[str] = field(default_factory=set)
    databases: list[dict] = field(default_factory=list)


def role_for(image: str) -> str:
    repo = image.split("@")[0].rsplit(":", 1)[0] if ":" in image.split("/")[-1] else image
    last = repo.split("/")[-1]
    if last in ("postgres", "postgresql") or "pgvecto" in repo or last.startswith("postgis"):
        return "postgres"
    if last in ("mariadb", "mysql"):
        return "mariadb"
    if last in ("redis", "valkey"):
        return "redis"
    return "app"


def is_docker_hub(image: str) -> bool:
    first = image.split("/")[0]
    return "/" not in image or not ("." in first or ":" in first or first == "localhost")


def plan_images(catalog) -> dict[str, ImagePlan]:
    """Every image of every valid recipe, with what its stand-in must do."""
    plans: dict[str, ImagePlan] = {}
    for recipe in catalog.recipes.values():
        manifest = recipe.manifest
        from devices.compose import service_mounts
        from marketplace.compose import parse_port

        for service_name, service in recipe.compose["services"].items():
            image = service["image"]
            plan = plans.setdefault(image, ImagePlan(image, role_for(image)))
            if plan.role != "app":
                continue
            plan.app = plan.app or recipe.slug
            for entry in service.get("ports") or []:
                port = parse_port(entry)
                plan.ports.add(f"{port.container_port}/{port.protocol}")
            mounted = {target for _, target, kind in service_mounts(service) if kind == "volume"}
            plan.volumes |= {v.container_path for v in manifest.volumes} & mounted
            if service_name == manifest.main_service:
                hc = manifest.health_check
                plan.ports.add(f"{hc.port}/tcp")
                if hc.type == "http" and hc.path:
                    plan.health = hc.path
            for need in manifest.requires_database:
                if (need.service or manifest.main_service) == service_name:
                    plan.databases.append({"engine": need.engine, "env": need.env.names()})
    return dict(sorted(plans.items()))


def _sha(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\0")
    return h.hexdigest()[:12]


def base_image() -> str:
    """The rootfs alone: it changes only with the package lists, so its big layer is
    pushed once; the scripts live in a small layer on top (scripts_image)."""
    return f"{BASE_REPO}:{_sha(rootfs.rootfs_key(), *EXCLUDES)}"


def build_base() -> str:
    tag = base_image()
    if lab_build.image_exists(tag):
        return tag
    root = rootfs.ensure_rootfs()
    t0 = time.monotonic()
    lab_build.log(f"docker import {tag}")
    lab_build.import_rootfs(
        tag,
        root,
        changes=[f"LABEL {LABEL}=standin-base", 'CMD ["/bin/sh"]'],
        excludes=EXCLUDES,
        nice=True,
    )
    lab_build.log(f"built {tag} in {time.monotonic() - t0:.0f} s")
    lab_build._prune_old(BASE_REPO, tag)
    return tag


def _docker_build(tag: str, dockerfile_text: str, context: Path | None = None) -> None:
    cmd = (
        ["nice", "docker", "build", "-q", "-t", tag, "-f", "-", str(context)]
        if context
        else ["nice", "docker", "build", "-q", "-t", tag, "-"]
    )
    done = subprocess.run(cmd, input=dockerfile_text.encode(), capture_output=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"docker build {tag} failed: {done.stderr.decode(errors='replace').strip()}"
        )


def build_scripts(base: str) -> str:
    """base + /standin/*.py + the .sh helpers: a small layer, rebuilt when a script changes."""
    files = sorted(p for p in SCRIPTS.iterdir() if p.is_file() and p.suffix in (".py", ".sh"))
    tag = f"{SCRIPTS_REPO}:{_sha(base, *(p.name.encode() + p.read_bytes() for p in files))}"
    if not lab_build.image_exists(tag):
        _docker_build(
            tag,
            f"FROM {base}\nCOPY *.py *.sh /standin/\n"
            "COPY healthcheck.sh docker-entrypoint.sh /usr/local/bin/\n",
            SCRIPTS,
        )
        lab_build._prune_old(SCRIPTS_REPO, tag)
    return tag


def _env_line(name: str, value: str) -> str:
    return f"ENV {name}={json.dumps(value).replace('$', chr(92) + '$')}"


def dockerfile(plan: ImagePlan, base: str) -> str:
    lines = [f"FROM {base}", f"LABEL {LABEL}=standin", _env_line("STANDIN_IMAGE", plan.name)]
    if plan.role == "postgres":
        lines += [
            "ENV PGDATA=/var/lib/postgresql/data",
            'ENTRYPOINT ["python3", "/standin/postgres.py"]',
            'CMD ["postgres"]',
        ]
    elif plan.role == "mariadb":
        lines += ['ENTRYPOINT ["python3", "/standin/mariadb.py"]', 'CMD ["mariadbd"]']
    elif plan.role == "redis":
        lines += [
            "ENV STANDIN_ENTRYPOINT=/standin/redis.py",
            'ENTRYPOINT ["python3", "/standin/redis.py"]',
            'CMD ["redis-server"]',
        ]
    else:
        lines += [
            _env_line("STANDIN_APP", plan.app),
            _env_line("STANDIN_PORTS", ",".join(sorted(plan.ports))),
            _env_line("STANDIN_HEALTH", plan.health),
            _env_line("STANDIN_VOLUMES", ",".join(sorted(plan.volumes))),
            _env_line("STANDIN_DATABASES", json.dumps(plan.databases, sort_keys=True)),
            # fixed entrypoint: a recipe's `command:` only becomes ignored arguments
            'ENTRYPOINT ["python3", "/standin/app.py"]',
            "CMD []",
        ]
    return "\n".join(lines) + "\n"


def build_standin(plan: ImagePlan, base: str) -> str:
    text = dockerfile(plan, base)
    tag = f"{STANDIN_REPO}:{_sha(text)}"
    if not lab_build.image_exists(tag):
        _docker_build(tag, text)
    return tag


def _image_id(tag: str) -> str:
    return subprocess.run(
        ["docker", "image", "inspect", "-f", "{{.Id}}", tag],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def _load_into_device(container: str, local: str, name: str) -> bool:
    """docker load `local` as `name` into a device unless it has that image id already."""
    have = subprocess.run(
        ["docker", "exec", container, "docker", "image", "inspect", "-f", "{{.Id}}", name],
        capture_output=True,
        text=True,
        check=False,
    )
    if have.returncode == 0 and have.stdout.strip() == _image_id(local):
        return False
    subprocess.run(["docker", "tag", local, name], check=True)
    try:
        save = subprocess.Popen(["docker", "save", name], stdout=subprocess.PIPE)
        subprocess.run(
            ["docker", "exec", "-i", container, "docker", "load", "-q"],
            stdin=save.stdout,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        save.wait()
    finally:
        subprocess.run(["docker", "rmi", name], capture_output=True, check=False)
    return True


def build_and_push_recipe_images(lab, catalog=None, *, verbose: bool = True) -> dict[str, str]:
    """Make every image the recipes name available to the lab devices, under its real
    name and tag. Returns {image name: local stand-in tag}. Cached: a second run with
    nothing changed only checks the registry and the devices."""
    from marketplace.recipes import load_catalog

    t0 = time.monotonic()
    catalog = catalog or load_catalog()
    base = build_scripts(build_base())
    plans = plan_images(catalog)
    marker_file = lab.registry.dir / "standins.json"
    pushed: dict[str, str] = json.loads(marker_file.read_text()) if marker_file.exists() else {}
    result: dict[str, str] = {}
    for name, plan in plans.items():
        local = build_standin(plan, base)
        result[name] = local
        image_id = _image_id(local)
        if is_docker_hub(name):
            if pushed.get(name) == image_id and lab.registry.has(name):
                continue
            if verbose:
                lab_build.log(f"push {name} ({plan.role})")
            lab.push_image(local, name)
            pushed[name] = image_id
            marker_file.write_text(json.dumps(pushed, indent=1, sort_keys=True))
            # A device that pulled the old image would keep using it (compose pulls only a
            # missing image): untag it there, so the next start pulls the new one.
            for device in lab.devices:
                if lab.is_device_running(device.name):
                    lab.exec(device.name, ["docker", "image", "rm", "-f", name])
        else:
            for device in lab.devices:
                if (
                    lab.is_device_running(device.name)
                    and _load_into_device(device.container, local, name)
                    and verbose
                ):
                    lab_build.log(f"docker load {name} into {device.name}")
    if verbose:
        lab_build.log(f"{len(result)} stand-in images ready in {time.monotonic() - t0:.0f} s")
    return result
