"""Parsing what devices report: cgroup limits win over /proc, no limit means /proc."""

from __future__ import annotations

import time

import pytest

from devices.metrics import (
    FIRST_SAMPLE_SECONDS,
    METRICS_SCRIPT,
    CpuCounters,
    gather,
    parse_cpu_sample,
    parse_memory_limit,
    parse_metrics,
    split_sections,
)
from tests.unit.devices import captured

GiB = 1024**3


def test_it_reports_proc_figures_when_there_is_no_cgroup_limit():
    m = parse_metrics(captured.NO_LIMITS)
    assert m.ram_total_bytes == 24684084 * 1024
    assert m.ram_used_bytes == (24684084 - 24134772) * 1024
    assert not m.memory_limited and not m.cpu_limited
    assert m.cpu_cores == 2.0
    assert m.storage_total_bytes == 270553174016
    assert m.storage_used_bytes == 26904334336
    assert m.storage_path == "/var/lib/docker"
    assert (m.load_1m, m.load_5m, m.load_15m) == (0.89, 0.66, 0.33)
    assert m.uptime_seconds == 502
    assert m.arch == "x86_64"
    assert m.os_name == "Debian GNU/Linux 12 (bookworm)"
    assert m.kernel == "6.18.44-fc-v669"
    assert m.docker_ok and m.docker_version == "20.10.24+dfsg1"
    assert m.docker_root_dir == "/var/lib/docker" and m.containers_running == 0
    assert not m.compose_ok and m.compose_command == ""


def test_a_cgroup_v1_limit_of_2_gib_wins_over_the_hosts_24_gb():
    m = parse_metrics(captured.CGROUP_V1_LIMITED)
    assert m.memory_limited
    assert m.ram_total_bytes == 2 * GiB
    # usage minus inactive file cache, as docker stats counts it
    assert m.ram_used_bytes == 38813696 - 32768
    assert m.cpu_limited and m.cpu_cores == 1.0
    assert m.compose_command == "docker compose" and m.compose_version == "2.40.3"
    assert m.containers_running == 0


def test_cgroup_v2_limits_are_read_too():
    m = parse_metrics(captured.CGROUP_V2_LIMITED)
    assert m.ram_total_bytes == GiB
    assert m.ram_used_bytes == 536870912 - 134217728
    assert m.cpu_cores == 1.5
    assert m.arch == "aarch64"
    assert m.compose_command == "docker-compose" and m.compose_version == "1.29.2"
    assert m.docker_root_dir == "/srv/docker"


def test_max_and_huge_limits_mean_no_limit():
    m = parse_metrics(captured.HUGE_LIMIT_V2)
    assert not m.memory_limited and not m.cpu_limited
    assert m.ram_total_bytes == 8000000 * 1024
    assert m.ram_used_bytes == 2000000 * 1024
    assert m.cpu_cores == 4.0


@pytest.mark.parametrize(
    "text, expected",
    [
        ("9223372036854771712", None),
        ("max", None),
        ("-1", None),
        ("", None),
        (None, None),
        (str(2**60), None),
        (str(2**60 - 1), 2**60 - 1),
        ("2147483648\n", 2147483648),
    ],
)
def test_memory_limits(text, expected):
    assert parse_memory_limit(text) == expected


def test_a_limit_larger_than_the_machine_does_not_inflate_its_ram():
    bigger = captured.CGROUP_V1_LIMITED.replace(
        "@@cg1_mem_limit\n2147483648", f"@@cg1_mem_limit\n{64 * GiB}"
    )
    m = parse_metrics(bigger)
    assert m.ram_total_bytes == 24684084 * 1024
    assert not m.memory_limited


def test_a_cpu_quota_above_nproc_leaves_nproc():
    wide = captured.CGROUP_V1_LIMITED.replace("@@cg1_cfs_quota\n100000", "@@cg1_cfs_quota\n400000")
    assert parse_metrics(wide).cpu_cores == 2.0


def test_first_poll_cpu_usage_comes_from_the_quiet_window():
    # /proc/stat between start and mid: busy 10+4=14 of 14+26+... jiffies
    m = parse_metrics(captured.NO_LIMITS)
    busy, total = (10 + 4), (10 + 4 + 36)
    assert m.cpu_usage_percent == pytest.approx(100 * busy / total, abs=0.1)


def test_limited_devices_use_the_cgroups_cpu_time():
    m = parse_metrics(captured.CGROUP_V1_LIMITED)
    # cpuacct.usage grew 4.246014 ms in the 0.256095 s window, on 1 core; /proc/stat (the
    # host's) would have said 50/50 jiffies busy = 100 %.
    assert m.cpu_usage_percent == pytest.approx(100 * 4246014 / 256095065, abs=0.1)
    v2 = parse_metrics(captured.CGROUP_V2_LIMITED)
    # 75 ms in 250 ms on 1.5 cores
    assert v2.cpu_usage_percent == pytest.approx(20.0, abs=0.1)


def test_a_recent_previous_poll_gives_the_average_since_then():
    previous = CpuCounters(
        clock_ns=1795307570562178931 - 30 * 10**9, cgroup_usage_ns=2394044667 - 300_000_000
    )
    m = parse_metrics(captured.CGROUP_V1_LIMITED, previous=previous.__dict__)
    assert m.cpu_usage_percent == pytest.approx(1.0, abs=0.05)  # 0.3 s of CPU in 30 s
    assert m.cpu_counters["cgroup_usage_ns"] == 2394044667


def test_an_old_previous_poll_is_ignored():
    previous = CpuCounters(clock_ns=1795307570562178931 - 3600 * 10**9, cgroup_usage_ns=0)
    m = parse_metrics(captured.CGROUP_V1_LIMITED, previous=previous.__dict__)
    assert m.cpu_usage_percent == pytest.approx(100 * 4246014 / 256095065, abs=0.1)


def test_docker_not_running_is_told_apart_from_docker_absent():
    stopped = parse_metrics(captured.DOCKER_NOT_RUNNING)
    assert stopped.docker_installed and not stopped.docker_running
    assert "Is the docker daemon running" in stopped.docker_problem
    assert stopped.storage_path == "/"
    absent = parse_metrics(captured.DOCKER_ABSENT)
    assert not absent.docker_installed and not absent.docker_running
    denied = parse_metrics(captured.DOCKER_PERMISSION_DENIED)
    assert denied.docker_problem.startswith("permission denied")


def test_missing_sections_give_unknowns_not_errors():
    m = parse_metrics("@@meminfo\nMemTotal: 1000 kB\n@@end\n")
    assert m.ram_total_bytes == 1024000
    assert m.ram_used_bytes is None
    assert m.cpu_cores is None and m.cpu_usage_percent is None
    assert m.storage_total_bytes is None
    assert not m.docker_installed


def test_sections_split_on_markers_only():
    sections = split_sections("noise\n@@a\n1\n2\n@@b\n\n@@c\nx @@d\n")
    assert sections == {"a": "1\n2", "b": "", "c": "x @@d"}


def test_cpu_sample_falls_back_to_proc_uptime_for_the_clock():
    sample = parse_cpu_sample("502.94\ncpu  1 2 3 4 5 6 7 8 0 0\n")
    assert sample.clock_ns == 502940000000
    assert sample.total_jiffies == 36 and sample.busy_jiffies == 36 - 4 - 5


def _runner(calls):
    def run(args):
        calls.append(args)
        return 0, captured.CGROUP_V1_LIMITED, ""

    return run


KNOWN = {
    "docker_root_dir": "/var/lib/docker",
    "compose_command": "docker compose",
    "compose_version": "2.40.3",
}


def test_without_a_recent_poll_the_script_samples_cpu_and_asks_the_docker_cli():
    calls = []
    m = gather(None, runner=_runner(calls), docker_info=dict, known_docker=KNOWN)
    assert len(calls) == 1
    assert calls[0][:2] == ["sh", "-c"] and calls[0][4:] == [str(FIRST_SAMPLE_SECONDS), "cli"]
    assert m.cpu_counters["full_check_at"] == m.cpu_counters["polled_at"]


def test_a_recent_full_check_lets_docker_figures_come_from_the_api():
    calls = []
    now = time.time()
    previous = {"polled_at": now - 30, "full_check_at": now - 60}
    info = {"ServerVersion": "27.1.0", "DockerRootDir": "/srv/docker", "ContainersRunning": 7}
    m = gather(
        None, previous=previous, runner=_runner(calls), docker_info=lambda: info, known_docker=KNOWN
    )
    assert calls == [["sh", "-c", METRICS_SCRIPT, "sh", "0", "skip", "/var/lib/docker"]]
    assert m.docker_ok and m.docker_version == "27.1.0" and m.containers_running == 7
    assert m.compose_command == "docker compose"
    assert m.cpu_counters["full_check_at"] == previous["full_check_at"]


def test_when_the_docker_api_fails_the_cli_says_what_is_wrong():
    calls = []
    now = time.time()

    def broken():
        raise ConnectionError("channel closed")

    m = gather(
        None,
        previous={"polled_at": now - 30, "full_check_at": now - 60},
        runner=_runner(calls),
        docker_info=broken,
        known_docker=KNOWN,
    )
    assert [c[5] for c in calls] == ["skip", "cli"]
    assert m.docker_version == "20.10.24+dfsg1"


def test_an_old_full_check_runs_the_cli_again():
    calls = []
    now = time.time()
    gather(
        None,
        previous={"polled_at": now - 30, "full_check_at": now - 7200},
        runner=_runner(calls),
        docker_info=dict,
        known_docker=KNOWN,
    )
    assert [c[5] for c in calls] == ["cli"]


def test_a_truncated_answer_counts_as_unreachable():
    from devices.ssh import Unreachable

    with pytest.raises(Unreachable):
        gather(None, runner=lambda args: (0, "@@meminfo\nMemTotal: 1 kB\n", ""))
