"""python -m tests.lab {up,down,status,apps,build} -- the device lab from the command line."""

from __future__ import annotations

import argparse
import sys
import time

from . import build
from .core import Lab, LabError, lab_available, session_marker


def _table(lab: Lab, rows: list[dict] | None = None) -> str:
    head = ["device", "hostname", "address", "port", "user", "password", "RAM", "CPUs"]
    if rows is not None:
        head += ["state", "ssh", "docker"]
    lines = []
    devices = [r["device"] for r in rows] if rows is not None else lab.devices + lab.extra_devices
    for i, d in enumerate(devices):
        line = [
            d.name,
            d.hostname,
            d.address,
            str(d.port),
            d.username,
            d.password,
            d.ram_label,
            f"{d.cpus:g}",
        ]
        if rows is not None:
            r = rows[i]
            line += [
                r["state"],
                "yes" if r["ssh"] else "no",
                ("yes" if r["docker"] else "no") if d.docker else "none",
            ]
        lines.append(line)
    widths = [max(len(x) for x in col) for col in zip(head, *lines, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*head), fmt.format(*("-" * w for w in widths))]
    out += [fmt.format(*line) for line in lines]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.lab", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="build (cached) and start the lab; prints the devices")
    up.add_argument("--with-nodocker", action="store_true", help="also create lab-nodocker")
    sub.add_parser("down", help="remove devices, volumes, network, registry")
    sub.add_parser("status", help="show the devices and whether they answer")
    sub.add_parser(
        "apps",
        help="build stand-ins of the catalog's app and database images and push them into "
        "the lab's registry, so the demo can deploy apps (~1 minute the first time)",
    )
    b = sub.add_parser("build", help="only build the images")
    b.add_argument("--force", action="store_true", help="rebuild even if cached")
    args = p.parse_args(argv)

    if args.cmd in ("up", "build", "apps"):
        ok, reason = lab_available()
        if not ok:
            print(f"The lab cannot run here: {reason}", file=sys.stderr)
            return 2
    lab = Lab()
    t0 = time.monotonic()
    try:
        if args.cmd == "build":
            tag = lab.build(force=args.force)
            print(f"{tag} ({build.busybox_image()}) ready in {time.monotonic() - t0:.1f} s")
        elif args.cmd == "up":
            lab.up()
            session_marker().unlink(missing_ok=True)  # started or adopted by hand: keep it
            if args.with_nodocker:
                lab.add_device_without_docker()
            print(_table(lab))
            print()
            print(
                f"Lab up in {time.monotonic() - t0:.1f} s. Network {lab.network_cidr} "
                f"(gateway {lab.gateway}), registry mirror http://{lab.registry_address}."
            )
            print(
                f"S3 storage for backups: endpoint {lab.s3.endpoint}, region {lab.s3.region}, "
                f"access key {lab.s3.access_key}, secret key {lab.s3.secret_key} "
                "(make a bucket: any name, it is created on first use)"
            )
            addrs = ", ".join(d.address for d in lab.devices)
            print(
                f"Add them in the product: Devices > Add device, address {addrs}, "
                f"user root, password {lab.password}"
            )
            print(
                "To deploy apps from the catalog on them: bin/homelab lab apps (stand-ins of "
                "the apps' images, built once)"
            )
        elif args.cmd == "apps":
            lab.up()
            session_marker().unlink(missing_ok=True)
            from tests.lab.images import (
                build_and_push_recipe_images,
                load_catalog_from_the_command_line,
            )

            images = build_and_push_recipe_images(lab, load_catalog_from_the_command_line())
            print(
                f"{len(images)} images ready in {time.monotonic() - t0:.0f} s: the lab devices "
                "pull them from the lab's registry when you deploy an app."
            )
        elif args.cmd == "down":
            lab.down()
            session_marker().unlink(missing_ok=True)
            print(
                "Lab removed (devices, their volumes, the network, the registry it started). "
                f"Cached images ({build.DEVICE_REPO}, {build.BUSYBOX_REPO}) and "
                f"{build.cache_dir()} stay for a fast next start."
            )
        elif args.cmd == "status":
            rows = lab.status()
            print(_table(lab, rows))
            reg = "running" if lab.registry.has(build.BUSYBOX_NAME) else "not running"
            print(
                f"\nregistry on :{lab.registry.port}: {reg}; image {build.device_image()}"
                f" {'cached' if build.image_exists(build.device_image()) else 'not built'}"
            )
    except LabError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
