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
#   down    cancels every job and waits for them to end, stops the daemons
#           by their pid files
#   status  the daemons, the node and the queue
#   env     export lines for a shell: eval "$(slurm/local-cluster.sh env)"
# Ports: DLM_SLURM_PORTS="<slurmctld> <slurmd>" (default "6817 6818", the
# standard ones: set others where a real slurmd runs or two clusters share
# a machine).
set -euo pipefail
cmd=${1:-}
state=${2:-${DLM_SLURM_STATE:-/tmp/dlm-slurm}}
conf=$state/etc/slurm.conf
host=$(hostname -s)

die() { echo "local-cluster: $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null || die "$1 not found: apt-get install slurm-wlm munge"; }

read -r ctld_port slurmd_port <<<"${DLM_SLURM_PORTS:-6817 6818}"

write_config() {
  mkdir -p "$state"
  # root's daemons trust what is in here: it must be this user's alone
  [[ -O $state && ! -L $state ]] || die "$state is not a folder of $(id -un)'s own"
  chmod 0755 "$state"
  mkdir -p "$state"/{etc,munge,spool,ctld,log,run,tmp}
  chmod 0755 "$state/munge" # munged refuses a socket folder others can write
  local k=$state/munge/munge.key
  if [[ ! -s $k ]]; then (umask 077; dd if=/dev/urandom of="$k" bs=1024 count=1 status=none); fi
  chmod 0400 "$k"
  cat >"$conf" <<CONF
# written by slurm/local-cluster.sh: one node, root, no systemd, no database
ClusterName=dlm-local
SlurmctldHost=$host
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
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

# The daemon of pid file $1 runs: a live pid whose command line names this
# state folder (a pid file left from before a reboot may name another process).
pid_alive() {
  [[ -s $1 ]] || return 1
  local p
  p=$(cat "$1")
  kill -0 "$p" 2>/dev/null && tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF -- "$state"
}

up() {
  need munged; need slurmctld; need slurmd
  write_config
  if ! pid_alive "$state/run/munged.pid"; then
    munged --key-file="$state/munge/munge.key" --socket="$state/munge/munge.socket" \
      --pid-file="$state/run/munged.pid" --log-file="$state/log/munged.log" \
      --seed-file="$state/munge/munge.seed" ||
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
    [[ $s == idle || $s == mixed || $s == allocated ]] && break
    sleep 0.5
  done
  [[ $s == idle || $s == mixed || $s == allocated ]] ||
    die "node $host is '${s:-not reporting}' after 30 s (see $state/log/slurmd.log, slurmctld.log)"
  echo "local-cluster: up ($host, 4 CPUs, partitions debug and urgent; state in $state)"
}

stop_pid() {
  local f=$1 i p
  pid_alive "$f" || { rm -f "$f"; return 0; }
  p=$(cat "$f")
  kill "$p" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$p" 2>/dev/null && kill -9 "$p" 2>/dev/null
  rm -f "$f"
}

# Every job cancelled and gone, while slurmd can still end their processes
# (at most KillWait + 15 s), then what is left of them killed.
end_jobs() {
  local i jobs p
  jobs=$(squeue -h -o %A 2>/dev/null || true)
  [[ -z $jobs ]] && return 0
  # shellcheck disable=SC2086 # one job id per word
  scancel --full $jobs 2>/dev/null || true
  for ((i = 0; i < 90; i++)); do
    [[ -z $(squeue -h -o %A 2>/dev/null || true) ]] && return 0
    sleep 0.5
  done
  for j in $(squeue -h -o %A 2>/dev/null || true); do
    for p in $(scontrol listpids "$j" 2>/dev/null | awk 'NR > 1 { print $1 }'); do
      kill -9 "$p" 2>/dev/null || true
    done
  done
}

down() {
  export SLURM_CONF=$conf
  if pid_alive "$state/run/slurmctld.pid" && pid_alive "$state/run/slurmd.pid"; then end_jobs; fi
  stop_pid "$state/run/slurmd.pid"
  stop_pid "$state/run/slurmctld.pid"
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
env) printf 'export SLURM_CONF=%q OMPI_MCA_mpi_yield_when_idle=1\n' "$conf" ;;
*) echo "usage: slurm/local-cluster.sh up|down|status|env [STATE_DIR]" >&2; exit 2 ;;
esac
