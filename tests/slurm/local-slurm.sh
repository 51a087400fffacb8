#!/usr/bin/env bash
# A single-node SLURM on localhost for the integration test: start | stop | status.
# Needs Debian's slurmctld, slurmd, slurm-client and munge (install: ./local-slurm.sh install).
# There is no systemd: munged, slurmctld and slurmd run as daemons and are stopped by PID.
set -euo pipefail

STATE=${LOCAL_SLURM_STATE:-/tmp/local-slurm}
CONF=/etc/slurm/slurm.conf
HOST=$(hostname -s)

alive() {  # a stopped daemon can linger as a zombie: look at its state, not kill -0
  local pid=$1
  [ -r "/proc/$pid/stat" ] && [ "$(awk '{print $3}' "/proc/$pid/stat")" != "Z" ]
}

install() {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurmctld slurmd slurm-client munge >/dev/null
}

write_conf() {
  local cpus mem
  cpus=$(nproc)
  mem=$(( $(free -m | awk '/^Mem:/ {print $2}') * 9 / 10 ))
  mkdir -p /etc/slurm "$STATE/ctld" "$STATE/d" "$STATE/log"
  cat > "$CONF" <<CONF
ClusterName=localcluster
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
MinJobAge=600
ReturnToService=2
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
NodeName=$HOST CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
}

up() {
  timeout 5 sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'
}

start() {
  command -v slurmctld >/dev/null || { echo "slurmctld is not installed" >&2; exit 3; }
  if up; then echo "local SLURM is already up"; return 0; fi
  write_conf
  mkdir -p /etc/munge /run/munge /var/lib/munge /var/log/munge
  [ -s /etc/munge/munge.key ] || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  chmod 400 /etc/munge/munge.key
  if ! pgrep -x munged >/dev/null; then
    munged --force --pid-file="$STATE/munged.pid" 2>/dev/null || munged --force
  fi
  slurmctld -c -f "$CONF"
  slurmd -f "$CONF"
  for _ in $(seq 60); do
    if up; then
      echo "local SLURM is up: $(sinfo -h -o '%P %D %T %c CPUs %m MB')"
      return 0
    fi
    sleep 1
  done
  echo "local SLURM did not come up; logs in $STATE/log" >&2
  tail -n 20 "$STATE"/log/*.log >&2 || true
  exit 1
}

stop() {
  for name in slurmd slurmctld munged; do
    local pidfile="$STATE/$name.pid" pid=""
    [ -s "$pidfile" ] && pid=$(cat "$pidfile")
    [ -n "$pid" ] || pid=$(pgrep -x "$name" | head -n 1 || true)
    [ -n "$pid" ] || continue
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 20); do alive "$pid" || break; sleep 0.25; done
    alive "$pid" && kill -9 "$pid" 2>/dev/null || true
    rm -f "$pidfile"
  done
  echo "local SLURM stopped"
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) if up; then sinfo; else echo "local SLURM is down"; exit 1; fi ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
