"""backups.restic: command lines, secrets kept off them, restic's JSON and exit codes."""

from __future__ import annotations

import json
import os
import stat
import subprocess

import pytest

from backups import restic

HOST = "d3-vaultwarden-a"


def test_backup_of_volumes_names_host_tags_and_paths():
    args = restic.backup_args(host=HOST, app="vaultwarden", volumes=["vw_data", "vw-cfg"])
    assert args == [
        "backup", "--json", "--host", HOST, "--tag", "app:vaultwarden", "--tag",
        "kind:volumes", "/data/vw_data", "/data/vw-cfg",
    ]  # fmt: skip


def test_backup_from_stdin_stores_the_dump_under_the_database_name():
    args = restic.backup_stdin_args(host=HOST, app="nextcloud", database="nextcloud_a")
    assert args[-3:] == ["--stdin", "--stdin-filename", "nextcloud_a.sql"]
    assert "kind:db" in args and "db:nextcloud-a" in args


def test_forget_keeps_by_policy_per_host_and_tags():
    args = restic.forget_args(host=HOST, app="vaultwarden", keep=restic.Retention(7, 4, 6))
    assert args[args.index("--keep-daily") + 1] == "7"
    assert args[args.index("--keep-weekly") + 1] == "4"
    assert args[args.index("--keep-monthly") + 1] == "6"
    assert args[args.index("--group-by") + 1] == "host,tags"


def test_a_retention_that_keeps_nothing_is_refused():
    with pytest.raises(restic.ResticInputError):
        restic.Retention(0, 0, 0)
    with pytest.raises(restic.ResticInputError):
        restic.Retention(-1, 4, 6)


@pytest.mark.parametrize(
    "bad", ["a;rm -rf /", "$(id)", "`id`", "x y", "../etc", "a\nb", "'q'", "", "A|B"]
)
def test_metacharacters_never_reach_a_command_line(bad):
    with pytest.raises(restic.ResticInputError):
        restic.backup_args(host=HOST, app="vaultwarden", volumes=[bad])
    with pytest.raises(restic.ResticInputError):
        restic.backup_args(host=bad, app="vaultwarden", volumes=["v"])
    with pytest.raises(restic.ResticInputError):
        restic.restore_args(bad, ["v"])
    with pytest.raises(restic.ResticInputError):
        restic.dump_command("postgres", "c1", bad)
    with pytest.raises(restic.ResticInputError):
        restic.s3_repository("http://h:9000", bad, "p")


def test_docker_run_mounts_volumes_read_only_and_names_env_vars_only():
    args = restic.docker_run(restic.snapshots_args(), env_names=["RESTIC_PASSWORD"], volumes=["v1"])
    assert "v1:/data/v1:ro" in args
    assert f"{restic.CACHE_VOLUME}:{restic.CACHE_PATH}" in args
    assert args[args.index("--memory") + 1] == restic.DEFAULT_MEMORY
    assert args[args.index("-e") + 1] == "RESTIC_PASSWORD"
    assert restic.IMAGE in args
    rw = restic.docker_run(["restore"], env_names=[], volumes=["v1"], read_only=False)
    assert "v1:/data/v1" in rw


def test_host_is_fixed_per_device_and_app():
    assert restic.host_for(3, "vaultwarden-a") == "d3-vaultwarden-a"
    assert restic.host_for(3, "Vault_warden") == "d3-vault-warden"


def test_s3_repository():
    assert (
        restic.s3_repository("http://172.30.57.1:5901/", "backups", "homelab/app-1")
        == "s3:http://172.30.57.1:5901/backups/homelab/app-1"
    )


def test_secrets_travel_on_stdin_never_on_a_command_line(tmp_path):
    """Run the real wrapper script with a stand-in `docker` that records its own command
    line, its parent's, and the environment it got."""
    secret = "s3cr3t-Pa55 with space"
    fake = tmp_path / "docker"
    fake.write_text(
        "#!/bin/sh\n"
        f'tr "\\0" " " < /proc/$$/cmdline > {tmp_path}/self\n'
        f'tr "\\0" " " < /proc/$PPID/cmdline > {tmp_path}/parent\n'
        f'printf "%s" "$RESTIC_PASSWORD" > {tmp_path}/env\n'
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    line = " ".join(restic.docker_run(restic.snapshots_args(), env_names=["RESTIC_PASSWORD"]))
    done = subprocess.run(
        restic.device_command(line),
        input=restic.env_stdin({"RESTIC_PASSWORD": secret, "AWS_ACCESS_KEY_ID": "AK"}),
        env={"PATH": f"{tmp_path}:{os.environ['PATH']}"},
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "env").read_text() == secret
    for f in ("self", "parent"):
        seen = (tmp_path / f).read_text()
        assert "RESTIC_PASSWORD" in seen or f == "parent"
        assert secret not in seen and "AK" not in seen.split()


def test_env_values_with_line_breaks_are_refused():
    with pytest.raises(restic.ResticInputError):
        restic.env_stdin({"RESTIC_PASSWORD": "a\nb"})
    with pytest.raises(restic.ResticInputError):
        restic.env_stdin({"bad name": "x"})


def test_a_pipe_reports_the_dump_exit_code(tmp_path):
    line = restic.piped(["sh", "-c", "echo data; exit 7"], ["cat"])
    done = subprocess.run(
        restic.device_command(line), input=restic.env_stdin({}), capture_output=True
    )
    assert done.returncode == 0
    assert done.stdout == b"data\n"
    assert restic.dump_exit(done.stderr.decode()) == 7


STATUS = {
    "message_type": "status",
    "percent_done": 0.5,
    "total_files": 10,
    "files_done": 5,
    "total_bytes": 2000,
    "bytes_done": 1000,
    "seconds_remaining": 4,
}
SUMMARY_014 = {
    "message_type": "summary",
    "files_new": 3,
    "files_changed": 1,
    "files_unmodified": 0,
    "data_added": 1234,
    "total_files_processed": 4,
    "total_bytes_processed": 5000,
    "total_duration": 1.5,
    "snapshot_id": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
}


def test_parse_backup_reads_status_and_summary():
    out = "\n".join(json.dumps(m) for m in (STATUS, SUMMARY_014))
    outcome = restic.parse_backup(out)
    assert outcome.snapshot_id == SUMMARY_014["snapshot_id"]
    assert (outcome.files_total, outcome.bytes_total, outcome.bytes_added) == (4, 5000, 1234)
    assert outcome.last_status["percent"] == 50.0
    assert outcome.last_status["eta_seconds"] == 4
    newer = dict(SUMMARY_014, data_added_packed=600)
    assert restic.parse_backup(json.dumps(newer)).bytes_added == 600


def test_parse_backup_collects_errors_of_both_versions():
    err = json.dumps(
        {
            "message_type": "error",
            "error": {"message": "permission denied"},
            "during": "archival",
            "item": "/data/v/secret",
        }
    )
    outcome = restic.parse_backup("", err + "\nerror: open /data/v/x: permission denied\n")
    assert outcome.errors == [
        "/data/v/secret: permission denied",
        "open /data/v/x: permission denied",
    ]


def test_parse_snapshots_and_forget():
    snaps = restic.parse_snapshots(
        json.dumps(
            [
                {
                    "id": "a" * 64,
                    "time": "2026-12-05T03:00:00Z",
                    "hostname": HOST,
                    "tags": ["app:x"],
                    "paths": ["/data/v"],
                },
                {"id": "bad id"},
            ]
        )
    )
    assert [s.id for s in snaps] == ["a" * 64]
    kept, removed = restic.parse_forget(
        json.dumps([{"keep": [{"id": "a" * 64}], "remove": [{"id": "b" * 64}]}])
    )
    assert kept == ["a" * 64] and removed == ["b" * 64]


def test_versions():
    assert restic.parse_version("restic 0.14.0 compiled with go1.19.8 on linux/amd64") == (0, 14, 0)
    assert restic.parse_version("restic 0.17.3 compiled with go1.23.3 on linux/amd64") == (0, 17, 3)
    assert restic.parse_version("nonsense") == ()


@pytest.mark.parametrize(
    ("code", "stderr", "reason"),
    [
        (0, "", ""),
        (3, "", "incomplete"),
        (11, "", "locked"),
        (1, "Fatal: unable to create lock in backend: repository is already locked", "locked"),
        (12, "", "wrong_password"),
        (1, "Fatal: wrong password or no key found", "wrong_password"),
        (10, "", "no_repository"),
        (
            1,
            "Fatal: unable to open config file: Stat: The specified key does not exist.\n"
            "Is there a repository at the following location?",
            "no_repository",
        ),
        (
            1,
            "Fatal: create repository failed: client.BucketExists: The access key ID you "
            "provided does not exist in our records.",
            "auth",
        ),
        (1, "SignatureDoesNotMatch", "auth"),
        (1, "dial tcp 10.0.0.9:9000: connect: connection refused", "unreachable"),
        (1, "NoSuchBucket", "no_bucket"),
        (1, "something else entirely", "failed"),
    ],
)
def test_exit_codes_and_words(code, stderr, reason):
    verdict = restic.classify(code, stderr, what="The backup")
    assert verdict.reason == reason
    assert verdict.ok is (code == 0)
    if code == 3:
        assert verdict.status == "warning"  # never success
    if code not in (0, 3):
        assert verdict.status == "failed" and verdict.message.startswith("The backup failed")


def test_an_upload_limit_is_a_global_flag_of_both_versions():
    args = restic.docker_run(restic.prune_args(), env_names=[], upload_limit_kib=256)
    image_at = args.index(restic.IMAGE)
    assert args[image_at + 1 :] == ["--cache-dir", "/cache", "--limit-upload", "256", "prune"]
    named = restic.docker_run(["prune"], env_names=[], name="homelab-restic-job-7")
    assert named[named.index("--name") + 1] == "homelab-restic-job-7"
