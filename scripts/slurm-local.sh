#!/usr/bin/env bash
# A real single-node Slurm on this machine, from Debian's packages, for tests
# and for trying `moelab slurm` out. Everything lives in one temporary folder
# with a generated minimal slurm.conf; `stop` ends exactly what `start` began.
#
#   scripts/slurm-local.sh start     # installs slurm-wlm + munge if missing, starts munged, slurmctld, slurmd
#   eval "$(scripts/slurm-local.sh env)"   # SLURM_CONF for sbatch/squeue/scontrol
#   scripts/slurm-local.sh status
#   scripts/slurm-local.sh stop
#
# MOELAB_SLURM_DIR (default /tmp/moelab-slurm) holds slurm.conf, state, logs and pid files.
# Needs root (slurmd runs jobs as their submitter; munged runs as user munge).
set -euo pipefail
dir="${MOELAB_SLURM_DIR:-/tmp/moelab-slurm}"
conf="$dir/slurm.conf"
node="$(hostname -s)"

die() { echo "slurm-local: $*" >&2; exit 1; }

install_packages() {
  command -v slurmctld >/dev/null && command -v munged >/dev/null && return
  [ "$(id -u)" -eq 0 ] || die "slurm-wlm and munge are not installed and this is not root: apt-get install slurm-wlm munge"
  echo "slurm-local: installing slurm-wlm and munge" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
}

write_conf() {
  mkdir -p "$dir/state" "$dir/spool" "$dir/log"
  local mem_mb cpus
  mem_mb=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
  cpus=$(nproc)
  # proctrack/linuxproc and task/none: no cgroup plugins (cgroup v2 delegation is not available here).
  cat > "$conf" <<CONF
ClusterName=moelab-local
SlurmctldHost=$node
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
InactiveLimit=0
KillWait=5
MinJobAge=300
NodeName=$node CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=local Nodes=$node Default=YES MaxTime=INFINITE State=UP
CONF
}

start() {
  install_packages
  [ "$(id -u)" -eq 0 ] || die "start needs root (slurmd and munged)"
  write_conf
  if ! pgrep -x munged >/dev/null; then
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    [ -s /etc/munge/munge.key ] || { dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none;
                                      chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key; }
    runuser -u munge -- /usr/sbin/munged
    touch "$dir/started-munged"
  fi
  slurmctld -f "$conf"
  slurmd -f "$conf"
  export SLURM_CONF="$conf"
  for _ in $(seq 1 60); do
    if sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
      echo "slurm-local: up (node $node, $(nproc) CPUs); eval \"\$($0 env)\" to use it" >&2
      return 0
    fi
    sleep 0.5
  done
  echo "--- slurmctld.log" >&2; tail -n 20 "$dir/log/slurmctld.log" >&2 || true
  echo "--- slurmd.log" >&2; tail -n 20 "$dir/log/slurmd.log" >&2 || true
  stop
  die "the node did not become idle within 30 s (logs above)"
}

stop() {
  for daemon in slurmd slurmctld; do
    if [ -s "$dir/$daemon.pid" ]; then
      kill "$(cat "$dir/$daemon.pid")" 2>/dev/null || true
    fi
  done
  for _ in $(seq 1 20); do
    pgrep -f "slurm(ctld|d) -f $conf" >/dev/null || break
    sleep 0.25
  done
  pkill -9 -f "slurm(ctld|d) -f $conf" 2>/dev/null || true
  if [ -e "$dir/started-munged" ]; then
    pkill -x munged 2>/dev/null || true
    rm -f "$dir/started-munged"
  fi
  echo "slurm-local: stopped" >&2
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  env) echo "export SLURM_CONF=$conf" ;;
  status) SLURM_CONF="$conf" sinfo && SLURM_CONF="$conf" squeue ;;
  *) die "usage: $0 start|stop|env|status" ;;
esac
