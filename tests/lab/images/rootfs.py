"""The stand-ins' Debian root filesystem: debootstrap once, then apt-get in a chroot.

One rootfs serves every stand-in (PostgreSQL, MariaDB, Redis and the generic app server):
the registry stores its layer once and a device pulls it once, whatever the number of
app images that sit on top of it as thin tagged layers.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from tests.lab import build as lab_build

SUITE = lab_build.SUITE
# debootstrap resolves these; the servers come later with apt-get in the chroot, where a
# policy-rc.d keeps their maintainer scripts from starting services on the build host.
BOOTSTRAP_PACKAGES = ("python3", "ca-certificates", "procps", "iproute2")
SERVER_PACKAGES = (
    "postgresql",
    "postgresql-client",
    "mariadb-server",
    "mariadb-client",
    "redis-server",
    "redis-tools",
)


def rootfs_key() -> str:
    return lab_build._sha("standin", SUITE, ",".join(BOOTSTRAP_PACKAGES), ",".join(SERVER_PACKAGES))


def _chroot(root: Path, *cmd: str) -> None:
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "DEBIAN_FRONTEND": "noninteractive",
        "LANG": "C.UTF-8",
        "HOME": "/root",
    }
    subprocess.run(
        ["nice", "chroot", str(root), *cmd], check=True, env=env, stdout=subprocess.DEVNULL
    )


def ensure_rootfs() -> Path:
    """Build (once) and return the stand-in rootfs under the lab cache."""
    root = lab_build.cache_dir() / f"standin-rootfs-{rootfs_key()}"
    if (root / ".lab-complete").exists():
        return root
    if shutil.which("debootstrap") is None:
        raise RuntimeError("debootstrap is missing: apt-get install -y debootstrap")
    tmp = root.with_name(root.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    mirror = lab_build.debian_mirror()
    t0 = time.monotonic()
    lab_build.log(f"stand-ins: debootstrap {SUITE} (once)")
    subprocess.run(
        [
            "nice",
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(BOOTSTRAP_PACKAGES)}",
            SUITE,
            str(tmp),
            mirror,
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    policy = tmp / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    (tmp / "etc/apt/sources.list").write_text(f"deb {mirror} {SUITE} main\n")
    lab_build.log("stand-ins: apt-get install " + " ".join(SERVER_PACKAGES))
    _chroot(tmp, "apt-get", "update", "-q")
    _chroot(tmp, "apt-get", "install", "-y", "-q", "--no-install-recommends", *SERVER_PACKAGES)
    _chroot(tmp, "apt-get", "clean")
    # the packages' default clusters and data: each container initialises its own
    for sub in ("var/lib/postgresql/15/main", "var/lib/mysql", "var/lib/redis"):
        p = tmp / sub
        if p.exists():
            shutil.rmtree(p)
    for sub in ("var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/locale"):
        d = tmp / sub
        if d.exists():
            shutil.rmtree(d)
            d.mkdir()
    policy.unlink()
    (tmp / ".lab-complete").write_text(f"{SUITE} {mirror} {time.time()}\n")
    tmp.rename(root)
    lab_build.log(f"stand-ins: rootfs ready in {time.monotonic() - t0:.0f} s")
    return root


if __name__ == "__main__":
    os.nice(5)
    print(ensure_rootfs())
