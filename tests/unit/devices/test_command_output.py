""" "What I did" keeps a command's meaningful lines, not `docker pull` progress
(issue 14, item 17)."""

from __future__ import annotations

from devices import compose, ssh
from devices.command_output import KEEP_LINES, is_progress_line, meaningful_output
from homelab.core.masking import MASK

LAYERS = ["7264a8db6415", "e1cd0a8e8a04", "3f1c7a2b9d10"]

# `docker compose up -d` pulling two images, as a device printed it through SSH (no TTY):
# a line per layer per state, redrawn progress with carriage returns, colour codes.
COMPOSE_UP = "\n".join(
    [
        " db Pulling ",
        " vaultwarden Pulling ",
        *(f" {layer} Pulling fs layer " for layer in LAYERS),
        *(f" {layer} Waiting " for layer in LAYERS[1:]),
        *(
            f" {layer} Downloading [{'=' * n}>{' ' * (49 - n)}]  {n * 64}kB/3.197MB\r"
            for layer in LAYERS
            for n in range(0, 49, 2)
        ),
        *(f" {layer} Verifying Checksum " for layer in LAYERS),
        *(f" {layer} Download complete " for layer in LAYERS),
        *(
            f" {layer} Extracting [{'=' * n}>{' ' * (49 - n)}]  {n * 64}kB/3.197MB"
            for layer in LAYERS
            for n in range(0, 49, 8)
        ),
        *(f" \x1b[32m✔\x1b[0m {layer} Pull complete " for layer in LAYERS),
        " db Pulled ",
        " vaultwarden Pulled ",
        " Network hl-vaultwarden-default_default  Creating",
        " Network hl-vaultwarden-default_default  Created",
        " Container hl-vaultwarden-default-vaultwarden-1  Creating",
        " Container hl-vaultwarden-default-vaultwarden-1  Created",
        " Container hl-vaultwarden-default-vaultwarden-1  Starting",
        " Container hl-vaultwarden-default-vaultwarden-1  Started",
    ]
)

DOCKER_PULL = "\n".join(
    [
        "1.32.7: Pulling from vaultwarden/server",
        *(f"{layer}: Pulling fs layer" for layer in LAYERS),
        *(f"{layer}: Waiting" for layer in LAYERS),
        *(f"{layer}: Downloading [==>   ]  1.2MB/28MB" for layer in LAYERS),
        *(f"{layer}: Verifying Checksum" for layer in LAYERS),
        *(f"{layer}: Extracting [=====>  ]  20MB/28MB" for layer in LAYERS),
        *(f"{layer}: Pull complete" for layer in LAYERS),
        "Digest: sha256:" + "ab" * 32,
        "Status: Downloaded newer image for vaultwarden/server:1.32.7",
        "docker.io/vaultwarden/server:1.32.7",
    ]
)


def test_compose_up_keeps_what_it_pulled_and_started_and_drops_the_progress():
    kept = meaningful_output(COMPOSE_UP).splitlines()
    assert len(COMPOSE_UP.replace("\r", "\n").splitlines()) > 100
    assert kept[0].startswith("(… ") and "download progress lines left out)" in kept[0]
    assert kept[1:] == [
        " db Pulling",
        " vaultwarden Pulling",
        " db Pulled",
        " vaultwarden Pulled",
        " Network hl-vaultwarden-default_default  Creating",
        " Network hl-vaultwarden-default_default  Created",
        " Container hl-vaultwarden-default-vaultwarden-1  Creating",
        " Container hl-vaultwarden-default-vaultwarden-1  Created",
        " Container hl-vaultwarden-default-vaultwarden-1  Starting",
        " Container hl-vaultwarden-default-vaultwarden-1  Started",
    ]
    for phrase in ("Pulling fs layer", "Downloading [", "Extracting", "Waiting", "Verifying"):
        assert phrase not in "\n".join(kept)


def test_docker_pull_keeps_its_digest_and_status():
    kept = meaningful_output(DOCKER_PULL).splitlines()
    assert kept == [
        "(… 18 download progress lines left out)",
        "1.32.7: Pulling from vaultwarden/server",
        "Digest: sha256:" + "ab" * 32,
        "Status: Downloaded newer image for vaultwarden/server:1.32.7",
        "docker.io/vaultwarden/server:1.32.7",
    ]


def test_ordinary_output_is_left_as_it_was():
    text = "Waiting for the database\nPulling the config\nok"
    assert meaningful_output(text) == text
    assert not is_progress_line("Waiting for the database")
    assert meaningful_output("") == ""


def test_a_long_output_keeps_its_last_lines_and_says_how_many_went():
    text = "\n".join(f"line {i}" for i in range(KEEP_LINES + 25))
    kept = meaningful_output(text).splitlines()
    assert kept[0] == "(… 25 earlier lines left out)"
    assert kept[1] == "line 25" and kept[-1] == f"line {KEEP_LINES + 24}"


def test_the_device_shell_records_the_command_its_exit_and_the_meaningful_lines(monkeypatch):
    output = COMPOSE_UP + "\nerror: token s3cr3t-value refused"
    monkeypatch.setattr(ssh, "run", lambda *a, **k: (1, output, ""))
    recorded = []
    shell = compose.DeviceShell(
        None,
        secrets=["s3cr3t-value"],
        recorder=lambda command, exit_code, out, seconds: recorded.append(
            (command, exit_code, out)
        ),
    )
    shell.run(["docker", "compose", "up", "-d"])
    [(command, exit_code, out)] = recorded
    assert command == "docker compose up -d" and exit_code == 1
    assert "Downloading" not in out and "Pulling fs layer" not in out
    assert out.endswith(f"Started\nerror: token {MASK} refused")
