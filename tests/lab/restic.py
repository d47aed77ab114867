"""The lab's restic image: a stand-in for the official one, from Debian's `restic` (0.14).

``homelab-lab/restic:<hash>`` is the lab's busybox image plus ``/usr/bin/restic`` from the
Debian package and the C library it links (taken from the device rootfs, Debian too), with
``ENTRYPOINT ["/usr/bin/restic"]`` like upstream's image. The lab pushes it to its
registry under the name the product pins (backups.restic.IMAGE), so devices pull it as
they would the real one. Cached: the .deb and the binary under ``<cache>/downloads``, the
image by its tag, the push by the image id in ``<registry>/restic.json``.

Kept apart from build.py on purpose: the device image's tag hashes build.py, so a change
here never recreates the lab's devices.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from . import build

PACKAGE = "restic"
REPO = "homelab-lab/restic"
# restic from Debian links libc only; the loader comes with it
LIBS = ("lib/x86_64-linux-gnu/libc.so.6", "lib64/ld-linux-x86-64.so.2")
HERE = Path(__file__).resolve()


def image() -> str:
    return f"{REPO}:{build._sha(PACKAGE, build.busybox_image(), *LIBS, HERE.read_bytes())}"


def ensure_binary() -> Path:
    """/usr/bin/restic of Debian's package, downloaded once with apt-get."""
    dl = build.cache_dir() / "downloads"
    dl.mkdir(exist_ok=True)
    binary = dl / "restic"
    if binary.exists():
        return binary
    debs = sorted(dl.glob(f"{PACKAGE}_*.deb"))
    if not debs:
        build.log(f"apt-get download {PACKAGE}")
        subprocess.run(["apt-get", "download", PACKAGE], cwd=dl, capture_output=True, check=True)
        debs = sorted(dl.glob(f"{PACKAGE}_*.deb"))
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["dpkg-deb", "-x", str(debs[-1]), tmp], check=True)
        shutil.copy2(Path(tmp) / "usr/bin/restic", binary.with_suffix(".partial"))
    binary.with_suffix(".partial").rename(binary)
    binary.chmod(0o755)
    return binary


def build_image() -> str:
    tag = image()
    if build.image_exists(tag):
        return tag
    busybox = build.build_busybox()
    binary = ensure_binary()
    root = build.ensure_rootfs()
    with tempfile.TemporaryDirectory() as tmp:
        ctx = Path(tmp)
        shutil.copy2(binary, ctx / "restic")
        copies = []
        for lib in LIBS:
            shutil.copy2(root / lib, ctx / Path(lib).name, follow_symlinks=True)
            copies.append(f"COPY {Path(lib).name} /{lib}")
        dockerfile = "\n".join(
            [
                f"FROM {busybox}",
                "COPY restic /usr/bin/restic",
                *copies,
                f"LABEL {build.LABEL}=restic",
                'ENTRYPOINT ["/usr/bin/restic"]',
                "",
            ]
        )
        done = subprocess.run(
            ["docker", "build", "-q", "-t", tag, "-f", "-", str(ctx)],
            input=dockerfile.encode(),
            capture_output=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"docker build {tag} failed: {done.stderr.decode().strip()}")
    build._prune_old(REPO, tag)
    return tag


def ensure_pushed(registry, name: str) -> str:
    """Build (cached) and push as `name` unless the registry has this image id already."""
    local = build_image()
    image_id = subprocess.run(
        ["docker", "image", "inspect", "-f", "{{.Id}}", local],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    marker = registry.dir / "restic.json"
    pushed = json.loads(marker.read_text()) if marker.exists() else {}
    if pushed.get(name) != image_id or not registry.has(name):
        build.log(f"push {name} (restic from Debian)")
        registry.push(local, name)
        pushed[name] = image_id
        marker.write_text(json.dumps(pushed, indent=1, sort_keys=True))
    return local
