#!/bin/bash
# Init of a lab device: a Debian container that behaves like a small machine with its
# own sshd and its own Docker engine. Runs as the container's main process (under
# docker's --init, so orphans are reaped).
#
# Environment:
#   LAB_ROOT_PASSWORD  root password, set on first boot only (a real machine keeps its
#                      password across reboots; change it later with chpasswd)
#   LAB_GATEWAY        the lab bridge's gateway address: the host's registry mirror
#   LAB_REGISTRY_PORT  port of that registry (default 5000)
#   LAB_NO_DOCKER=1    a machine without Docker: hide the docker binaries, run sshd only
set -u

log() { echo "lab-init: $*"; }

# --- cgroups (v1): give the nested dockerd writable hierarchies -------------------
# Docker gives the container read-only cgroup mounts; replace them with writable ones.
if [ "${LAB_NO_DOCKER:-0}" != "1" ]; then
    mount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup || log "tmpfs on /sys/fs/cgroup failed"
    # /proc/cgroups: subsys_name hierarchy num_cgroups enabled
    while read -r name _hier _num enabled; do
        case "$name" in '#'*|'') continue ;; esac
        [ "$enabled" = "1" ] || continue
        mkdir -p "/sys/fs/cgroup/$name"
        if ! mount -n -t cgroup -o "$name" cgroup "/sys/fs/cgroup/$name" 2>/dev/null; then
            # net_cls, net_prio, perf_event, hugetlb refuse here: not needed by dockerd
            rmdir "/sys/fs/cgroup/$name" 2>/dev/null
        fi
    done < /proc/cgroups
    mkdir -p /sys/fs/cgroup/systemd
    mount -n -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd 2>/dev/null \
        || log "name=systemd cgroup refused"
fi

# --- first boot: root password ----------------------------------------------------
if [ ! -e /etc/lab-first-boot-done ]; then
    if [ -n "${LAB_ROOT_PASSWORD:-}" ]; then
        echo "root:${LAB_ROOT_PASSWORD}" | chpasswd
    fi
    # Each device its own SSH host keys, as real machines have: the image's keys are shared
    # by every container made from it (the product takes one host key for one machine).
    rm -f /etc/ssh/ssh_host_*
    touch /etc/lab-first-boot-done
fi

# --- sshd -----------------------------------------------------------------------------
ssh-keygen -A >/dev/null
mkdir -p /run/sshd /root/.ssh /etc/ssh/sshd_config.d
chmod 700 /root/.ssh
cat > /etc/ssh/sshd_config.d/lab.conf <<'EOF'
PermitRootLogin yes
PasswordAuthentication yes
PubkeyAuthentication yes
UseDNS no
MaxStartups 100:30:200
MaxSessions 50
EOF

if [ "${LAB_NO_DOCKER:-0}" = "1" ]; then
    # A machine without Docker: the product must report docker_missing.
    mkdir -p /usr/local/lib/lab-hidden
    for b in docker dockerd docker-compose containerd containerd-shim-runc-v2 runc; do
        [ -e "/usr/bin/$b" ] && mv "/usr/bin/$b" /usr/local/lib/lab-hidden/
        [ -e "/usr/sbin/$b" ] && mv "/usr/sbin/$b" /usr/local/lib/lab-hidden/
    done
    rm -rf /usr/libexec/docker
    log "no docker on this device; sshd only"
    exec /usr/sbin/sshd -D -e
fi

/usr/sbin/sshd || log "sshd failed to start"

# --- dockerd with the lab registry as Docker Hub mirror ------------------------------
# "dns": nested containers get no outside resolver (dockerd would fall back to a public
# one because the device's own resolver is on loopback); names of compose services
# still resolve through Docker's embedded DNS.
mkdir -p /etc/docker
if [ -n "${LAB_GATEWAY:-}" ]; then
    reg="${LAB_GATEWAY}:${LAB_REGISTRY_PORT:-5000}"
    cat > /etc/docker/daemon.json <<EOF
{"registry-mirrors": ["http://${reg}"], "insecure-registries": ["${reg}"], "dns": ["127.0.0.1"]}
EOF
fi
rm -f /var/run/docker.pid /run/docker.pid /var/run/docker/containerd/containerd.pid
log "starting dockerd"
exec /usr/sbin/dockerd
