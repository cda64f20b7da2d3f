#!/usr/bin/env bash
# slurm/local-cluster.sh up|down|status|env [STATE_DIR]
# A one-node Slurm cluster on this machine, for single-box users and the
# tests: munged with its own key and socket, slurmctld and slurmd as root,
# everything (config, state, spool, logs, pids) under STATE_DIR (default
# $DLM_SLURM_STATE, else /tmp/dlm-slurm). Clients need the environment
# `local-cluster.sh env` prints (SLURM_CONF, and Open MPI yielding when
# idle: the node claims 4 CPUs on however many cores it has, so 4-rank
# jobs start).
#   up      writes the configuration, starts the daemons, waits for the node
#   down    cancels every job, stops the daemons by their pid files
#   status  the daemons, the node and the queue
#   env     export lines for a shell: eval "$(slurm/local-cluster.sh env)"
set -euo pipefail
cmd=${1:-}
state=${2:-${DLM_SLURM_STATE:-/tmp/dlm-slurm}}
conf=$state/etc/slurm.conf
host=$(hostname -s)

die() { echo "local-cluster: $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null || die "$1 not found: apt-get install slurm-wlm munge"; }

write_config() {
  mkdir -p "$state"/{etc,munge,spool,ctld,log,run,tmp}
  chmod 0755 "$state/munge" # munged refuses a socket folder others can write
  local k=$state/munge/munge.key
  if [[ ! -s $k ]]; then dd if=/dev/urandom of="$k" bs=1024 count=1 status=none; fi
  chmod 0400 "$k"
  cat >"$conf" <<CONF
# written by slurm/local-cluster.sh: one node, root, no systemd, no database
ClusterName=dlm-local
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire: a requeued job restarts after about 15 s instead of 2 minutes
AuthInfo=socket=$state/munge/munge.socket,cred_expire=10
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/spool
TmpFS=$state/tmp
SlurmctldPidFile=$state/run/slurmctld.pid
SlurmdPidFile=$state/run/slurmd.pid
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$state/log/jobcomp.txt
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=pmix
# the node may claim more CPUs than it has (4 on 2 cores: 4-rank jobs start)
SlurmdParameters=config_overrides
# a job whose dependency can never be met is cancelled, not left pending
DependencyParameters=kill_invalid_depend
SchedulerParameters=bf_interval=5,sched_interval=5
ReturnToService=2
MailProg=/bin/true
# preemption by partition: a job on "urgent" requeues one on "debug", which
# gets GraceTime seconds after SIGTERM to checkpoint before SIGKILL
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
NodeName=$host CPUs=4 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP PriorityTier=1 GraceTime=10
PartitionName=urgent Nodes=$host MaxTime=INFINITE State=UP PriorityTier=10 PreemptMode=OFF
CONF
  echo "CgroupPlugin=cgroup/v1" >"$state/etc/cgroup.conf"
}

pid_alive() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

up() {
  need munged; need slurmctld; need slurmd
  write_config
  if ! pid_alive "$state/run/munged.pid"; then
    munged --key-file="$state/munge/munge.key" --socket="$state/munge/munge.socket" \
      --pid-file="$state/run/munged.pid" --log-file="$state/log/munged.log" \
      --seed-file="$state/munge/munge.seed" --force ||
      die "munged did not start (see $state/log/munged.log)"
  fi
  export SLURM_CONF=$conf
  pid_alive "$state/run/slurmctld.pid" || slurmctld -f "$conf" ||
    die "slurmctld did not start (see $state/log/slurmctld.log)"
  pid_alive "$state/run/slurmd.pid" || slurmd -f "$conf" ||
    die "slurmd did not start (see $state/log/slurmd.log)"
  local i s=""
  for ((i = 0; i < 60; i++)); do
    s=$(sinfo -h -n "$host" -o %T 2>/dev/null || true)
    [[ $s == idle* || $s == mixed* || $s == allocated* ]] && break
    sleep 0.5
  done
  [[ $s == idle* || $s == mixed* || $s == allocated* ]] ||
    die "node $host is '${s:-not reporting}' after 30 s (see $state/log/slurmd.log, slurmctld.log)"
  echo "local-cluster: up ($host, 4 CPUs, partitions debug and urgent; state in $state)"
}

stop_pid() {
  local f=$1 i
  pid_alive "$f" || { rm -f "$f"; return 0; }
  local p
  p=$(cat "$f")
  kill "$p" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$p" 2>/dev/null || true
  rm -f "$f"
}

down() {
  export SLURM_CONF=$conf
  if pid_alive "$state/run/slurmctld.pid"; then scancel --full --quiet --user="$(id -un)" 2>/dev/null || true; fi
  stop_pid "$state/run/slurmd.pid"
  stop_pid "$state/run/slurmctld.pid"
  # job processes slurmd started (proctrack/linuxproc keeps no cgroup)
  pkill -9 -f "slurmstepd.*$state" 2>/dev/null || true
  stop_pid "$state/run/munged.pid"
  echo "local-cluster: down"
}

status() {
  export SLURM_CONF=$conf
  local d
  for d in munged slurmctld slurmd; do
    if pid_alive "$state/run/$d.pid"; then echo "$d: running (pid $(cat "$state/run/$d.pid"))"
    else echo "$d: stopped"; fi
  done
  if pid_alive "$state/run/slurmctld.pid"; then sinfo; squeue; fi
}

case $cmd in
up) up ;;
down) down ;;
status) status ;;
env) echo "export SLURM_CONF=$conf OMPI_MCA_mpi_yield_when_idle=1" ;;
*) echo "usage: slurm/local-cluster.sh up|down|status|env [STATE_DIR]" >&2; exit 2 ;;
esac
