"""Outputs of devices.metrics.METRICS_SCRIPT as devices really printed them.

NO_LIMITS: the test machine itself (Debian 12, 24 GB, 2 cores, cgroup v1 without limits at
the root: memory.limit_in_bytes = 9223372036854771712, cfs_quota_us = -1).
CGROUP_V1_LIMITED: the lab's "pi" (a container run with --memory 2g --cpus 1, cgroup v1,
private cgroupns): /proc shows the host's 24 GB and 2 cores, the cgroup root the device's
2 GiB and 1 CPU.
CGROUP_V2_LIMITED (written from the kernel's cgroup v2 file formats; no v2 machine here):
a container with memory.max 1 GiB and cpu.max "150000 100000".
HUGE_LIMIT_V2: cgroup v2 with memory.max = "max" and cpu.max "max 100000" (no limits).
"""

NO_LIMITS = """
@@cpu_start
ns 1795307057000000000
cpu  22610 0 6336 69818 631 0 244 843 0 0
294516655318

@@cpu_mid
ns 1795307057250000000
cpu  22620 0 6340 69854 631 0 244 843 0 0
294556655318

@@meminfo
MemTotal:       24684084 kB
MemFree:        21203760 kB
MemAvailable:   24134772 kB
Buffers:          205820 kB
Cached:          2870104 kB

@@cg1_mem_limit
9223372036854771712

@@cg1_mem_usage
4573061120

@@cg1_mem_stat
total_inactive_file 1623941120

@@cg2_mem_max

@@cg2_mem_current

@@cg2_mem_stat

@@nproc
2

@@cg1_cfs_quota
-1

@@cg1_cfs_period
100000

@@cg2_cpu_max

@@loadavg
0.89 0.66 0.33 3/130 21991

@@uptime
502.94 698.16

@@arch
x86_64

@@kernel
6.18.44-fc-v669

@@os
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"

@@docker_path
/usr/local/bin/docker

@@docker_info
20.10.24+dfsg1|/var/lib/docker|0
rc=0

@@compose

@@df
/var/lib/docker
/dev/vda       270553174016 26904334336 82039959552      25% /var/lib/docker

@@cpu_end
ns 1795307057370730366
cpu  22650 0 6350 69862 631 0 244 843 0 0
294616655318

@@end
"""

CGROUP_V1_LIMITED = """
@@cpu_start
ns 1795307569803979631
cpu  70607 7385 16094 104503 1204 0 556 2794 0 0
2029350595

@@cpu_mid
ns 1795307570060074696
cpu  70655 7385 16096 104503 1204 0 556 2794 0 0
2033596609

@@meminfo
MemTotal:       24684084 kB
MemFree:        19910588 kB
MemAvailable:   23802376 kB
Buffers:          154752 kB
Cached:          3816108 kB

@@cg1_mem_limit
2147483648

@@cg1_mem_usage
38813696

@@cg1_mem_stat
inactive_file 32768
total_inactive_file 32768

@@cg2_mem_max

@@cg2_mem_current

@@cg2_mem_stat

@@nproc
2

@@cg1_cfs_quota
100000

@@cg1_cfs_period
100000

@@cg2_cpu_max

@@loadavg
2.26 2.16 1.24 3/248 486

@@uptime
1015.92 1045.03

@@arch
x86_64

@@kernel
6.18.44-fc-v669

@@os
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"

@@docker_path
/usr/bin/docker

@@docker_info
20.10.24+dfsg1|/var/lib/docker|0
rc=0

@@compose
v2 2.40.3

@@df
/var/lib/docker
/dev/vda       270553174016 26004094976 82940198912      24% /var/lib/docker

@@cpu_end
ns 1795307570562178931
cpu  70736 7385 16116 104504 1204 0 556 2794 0 0
2394044667

@@end
"""

CGROUP_V2_LIMITED = """
@@cpu_start
ns 1000000000000
cpu  100 0 100 800 0 0 0 0 0 0
usage_usec 2000000

@@cpu_mid
ns 1000250000000
cpu  110 0 110 830 0 0 0 0 0 0
usage_usec 2075000

@@meminfo
MemTotal:        8000000 kB
MemAvailable:    6000000 kB

@@cg1_mem_limit

@@cg1_mem_usage

@@cg1_mem_stat

@@cg2_mem_max
1073741824

@@cg2_mem_current
536870912

@@cg2_mem_stat
inactive_file 134217728

@@nproc
4

@@cg1_cfs_quota

@@cg1_cfs_period

@@cg2_cpu_max
150000 100000

@@loadavg
0.10 0.20 0.30 1/50 100

@@uptime
3600.00 7000.00

@@arch
aarch64

@@kernel
6.1.0-rpi7-rpi-v8

@@os
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"

@@docker_path
/usr/bin/docker

@@docker_info
24.0.7|/srv/docker|5
rc=0

@@compose
v1 1.29.2

@@df
/srv/docker
/dev/sda1       1000000000000 250000000000 750000000000      25% /srv

@@cpu_end
ns 1000400000000
cpu  120 0 120 850 0 0 0 0 0 0
usage_usec 2120000

@@end
"""

HUGE_LIMIT_V2 = CGROUP_V2_LIMITED.replace(
    "@@cg2_mem_max\n1073741824", "@@cg2_mem_max\nmax"
).replace("150000 100000", "max 100000")

DOCKER_NOT_RUNNING = NO_LIMITS.replace(
    "20.10.24+dfsg1|/var/lib/docker|0\nrc=0",
    "||0\nCannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\nrc=1",
).replace(
    "@@df\n/var/lib/docker\n/dev/vda       270553174016 26904334336 82039959552      25% /var/lib/docker",
    "@@df\n/\n/dev/vda       270553174016 26904334336 82039959552      25% /",
)

DOCKER_PERMISSION_DENIED = NO_LIMITS.replace(
    "20.10.24+dfsg1|/var/lib/docker|0\nrc=0",
    "||0 permission denied while trying to connect to the Docker daemon socket at "
    "unix:///var/run/docker.sock: dial unix /var/run/docker.sock: connect: permission denied\nrc=1",
)

DOCKER_ABSENT = NO_LIMITS.replace(
    "@@docker_path\n/usr/local/bin/docker", "@@docker_path\n"
).replace("@@docker_info\n20.10.24+dfsg1|/var/lib/docker|0\nrc=0", "@@docker_info\n")
