#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for trying the sbatch templates and for the
# end-to-end tests: munged, slurmctld and slurmd with a generated configuration, all state under
# one folder. `stop` ends exactly the daemons that `start` recorded, by process id.
#
#   slurm/local-cluster.sh start  [--state-dir DIR] [--port N]   start (or keep) the cluster
#   slurm/local-cluster.sh status [--state-dir DIR]              daemons, node state, queue
#   slurm/local-cluster.sh env    [--state-dir DIR]              print `export SLURM_CONF=...`
#   slurm/local-cluster.sh stop   [--state-dir DIR]              stop the recorded daemons
#
# The default state folder is ${TMPDIR:-/tmp}/alignpro-slurm-$USER (ALIGNPRO_SLURM_STATE
# overrides it). Client commands (sbatch, squeue, sinfo, ...) find the cluster through
# SLURM_CONF: run `eval "$(slurm/local-cluster.sh env)"` first. Needs root (slurmd starts job
# steps as the submitting user) and the Debian packages slurm-wlm and munge
# (scripts/setup.sh installs them).
set -euo pipefail

readonly daemons=(munged slurmctld slurmd)
readonly plugin_dir=/usr/lib/x86_64-linux-gnu/slurm-wlm
readonly ready_timeout=${ALIGNPRO_SLURM_TIMEOUT:-60}

die() {
  echo "local-cluster: error: $*" >&2
  exit 1
}
say() { echo "local-cluster: $*"; }

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
}

# --- arguments ------------------------------------------------------------------------------

action=${1:-}
[ -n "$action" ] || {
  usage >&2
  exit 2
}
shift
state=${ALIGNPRO_SLURM_STATE:-${TMPDIR:-/tmp}/alignpro-slurm-$(id -un)}
port=""
while [ $# -gt 0 ]; do
  case "$1" in
    --state-dir) [ $# -ge 2 ] || die "--state-dir needs a folder"; state=$2; shift 2 ;;
    --state-dir=*) state=${1#*=}; shift ;;
    --port) [ $# -ge 2 ] || die "--port needs a number"; port=$2; shift 2 ;;
    --port=*) port=${1#*=}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument '$1'; allowed: --state-dir DIR, --port N (see --help)" ;;
  esac
done
case "$action" in
  start | stop | status | env) ;;
  -h | --help | help) usage; exit 0 ;;
  *) die "unknown action '$action'; allowed: start, stop, status, env" ;;
esac
if [ -n "$port" ] && ! [[ "$port" =~ ^[0-9]+$ && "$port" -ge 1024 && "$port" -le 65000 ]]; then
  die "--port: found '$port'; allowed: a number in [1024, 65000] (slurmctld's; slurmd: +1)"
fi
[ "$action" = start ] && mkdir -p -- "$(dirname -- "$state")"
if [ -d "$(dirname -- "$state")" ]; then
  state=$(cd -- "$(dirname -- "$state")" && pwd)/$(basename -- "$state")
fi

conf=$state/slurm.conf
pids=$state/pids

# --- process bookkeeping --------------------------------------------------------------------

# A recorded daemon counts as ours only while its process is alive (zombies do not count) and
# its command line still names our state folder, so a recycled process id is never touched.
alive() {
  local pid=$1 stat
  [ -r "/proc/$pid/stat" ] || return 1
  stat=$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null) || return 1
  [ "$stat" != Z ] && [ "$stat" != X ]
}

ours() {
  local name=$1 pid
  pid=$(recorded_pid "$name") || return 1
  alive "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$state/"
}

recorded_pid() {
  local file=$pids/$1.pid
  [ -s "$file" ] || return 1
  local pid
  pid=$(<"$file")
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  echo "$pid"
}

# --- the configuration ----------------------------------------------------------------------

port_free() {
  if command -v ss >/dev/null; then
    if ss -Htln "sport = :$1" 2>/dev/null | grep -q .; then return 1; fi
  elif (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
    return 1
  fi
  return 0
}

choose_port() {
  if [ -n "$port" ]; then
    port_free "$port" || die "--port $port: port $port is in use; choose another"
    port_free $((port + 1)) || die "--port $port: port $((port + 1)) (for slurmd) is in use"
    return
  fi
  local p
  for p in $(seq 6817 2 6917); do
    if port_free "$p" && port_free $((p + 1)); then
      port=$p
      return
    fi
  done
  die "no free pair of TCP ports in 6817..6918 for slurmctld and slurmd; give one with --port N"
}

node_name() {
  local name
  name=$(hostname -s 2>/dev/null || true)
  # slurmctld accepts only the host's own short name (or localhost) as its host.
  [[ "$name" =~ ^[A-Za-z0-9][A-Za-z0-9-]*$ ]] || name=localhost
  echo "$name"
}

# The GPUs slurmd may hand out as gres/gpu: one /dev/nvidiaN per device.
gpu_devices() {
  local d
  for d in /dev/nvidia[0-9]*; do
    [ -c "$d" ] && echo "$d"
  done
  return 0
}

write_config() {
  local node=$1 hw mpi gpus gres_line="" gres_types=""
  # slurmd -C reports what slurmd will find at registration; a node configured with more than
  # that would be drained at once.
  hw=$(slurmd -C 2>/dev/null | head -n 1) || true
  [[ "$hw" == NodeName=* ]] || die "slurmd -C did not describe this machine (got '$hw')"
  hw=${hw#NodeName=* }
  local cpus memory
  cpus=$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$hw")
  memory=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$hw")
  if [ -z "$cpus" ] || [ -z "$memory" ]; then
    die "cannot read CPUs and RealMemory from slurmd -C: $hw"
  fi

  if ls "$plugin_dir"/mpi_pmix*.so >/dev/null 2>&1; then mpi=pmix; else mpi=none; fi

  mapfile -t gpus < <(gpu_devices)
  if [ ${#gpus[@]} -gt 0 ]; then
    gres_types="GresTypes=gpu"
    gres_line="Gres=gpu:${#gpus[@]}"
    printf 'NodeName=%s Name=gpu File=%s\n' "$node" "${gpus[@]}" >"$state/gres.conf"
  else
    : >"$state/gres.conf"
  fi
  : >"$state/plugstack.conf"

  cat >"$conf" <<EOF
# Generated by slurm/local-cluster.sh for a one-node test cluster; regenerated on each start
# that finds no daemon running. Every path is under this folder.
ClusterName=alignpro-local
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=$(id -un)
SlurmdUser=$(id -un)
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$state/munge/munge.socket
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/spool
SlurmctldPidFile=$state/run/slurmctld.pid
SlurmdPidFile=$state/run/slurmd.pid
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig=$state/plugstack.conf
MailProg=/bin/true
# No cgroups: processes are tracked by parent chain, tasks are not confined.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$state/log/jobcomp.log
MpiDefault=$mpi
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=$((memory / cpus))
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=5
$gres_types
# Jobs may be requeued, by scontrol or by preemption from a higher-tier partition.
JobRequeue=1
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
# Short timeouts: a test cluster should notice problems in seconds, not minutes.
SlurmctldTimeout=20
SlurmdTimeout=30
MessageTimeout=10
InactiveLimit=0
KillWait=15
WaitTime=0
MinJobAge=600
ReturnToService=2
NodeName=$node NodeAddr=127.0.0.1 $hw $gres_line State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP PriorityTier=1 GraceTime=20
# A job in urgent preempts (requeues) the debug jobs in its way: a preemption to try out.
PartitionName=urgent Nodes=$node Default=NO MaxTime=INFINITE State=UP PriorityTier=2 PreemptMode=OFF
EOF
}

# --- starting -------------------------------------------------------------------------------

prepare_state_dir() {
  if [ -e "$state" ] || [ -L "$state" ]; then
    if [ ! -d "$state" ] || [ -L "$state" ]; then die "$state exists and is not a folder"; fi
    [ "$(stat -c %u "$state")" = "$(id -u)" ] || die "$state belongs to another user"
  else
    mkdir -p -- "$state"
  fi
  # munged insists that every folder above its socket is searchable by all.
  chmod 755 "$state"
  mkdir -p "$state"/{munge,ctld,spool,run,log,pids}
  chmod 700 "$state/ctld"
  chmod 755 "$state/munge"
  if [ ! -s "$state/munge/munge.key" ]; then
    mungekey --create --keyfile="$state/munge/munge.key" --bits=1024 >/dev/null 2>&1 ||
      dd if=/dev/urandom of="$state/munge/munge.key" bs=128 count=1 status=none
    chmod 400 "$state/munge/munge.key"
  fi
}

# Starts one daemon in the foreground mode of its own, detached into its own session, and records
# its process id.
launch() {
  local name=$1
  shift
  setsid "$@" </dev/null >>"$state/log/$name.out" 2>&1 &
  echo $! >"$pids/$name.pid"
}

wait_for() {
  local what=$1 test=$2 name=$3 waited=0
  until eval "$test"; do
    if ! ours "$name"; then
      echo "local-cluster: error: $name exited while starting; the end of its log:" >&2
      tail -n 20 "$state/log/$name.out" "$state/log/$name.log" >&2 2>/dev/null || true
      exit 1
    fi
    if [ "$waited" -ge $((ready_timeout * 2)) ]; then
      echo "local-cluster: error: $what not reached in ${ready_timeout}s; the end of its log:" >&2
      tail -n 20 "$state/log/$name.out" "$state/log/$name.log" >&2 2>/dev/null || true
      exit 1
    fi
    sleep 0.5
    waited=$((waited + 1))
  done
}

munge_ok() {
  munge -n -S "$state/munge/munge.socket" 2>/dev/null |
    unmunge -S "$state/munge/munge.socket" >/dev/null 2>&1
}

ctld_ok() { SLURM_CONF=$conf scontrol ping 2>/dev/null | grep -q 'is UP'; }

node_state() { SLURM_CONF=$conf sinfo -h -N -n "$1" -o %T 2>/dev/null | head -n 1; }

node_idle() {
  local s
  s=$(node_state "$1")
  case "$s" in
    idle | mixed | allocated | completing) return 0 ;;
    *drain* | *down* | *fail*)
      echo "local-cluster: error: node $1 is '$s': $(SLURM_CONF=$conf scontrol show node "$1" |
        sed -n 's/.*Reason=/Reason=/p')" >&2
      tail -n 20 "$state/log/slurmd.log" >&2 || true
      exit 1
      ;;
  esac
  return 1
}

start() {
  [ "$(id -u)" = 0 ] || die "must run as root: slurmd starts each job step as its user"
  local tool
  for tool in munged mungekey munge unmunge slurmctld slurmd sinfo scontrol; do
    command -v "$tool" >/dev/null ||
      die "'$tool' not found; install the Debian packages slurm-wlm and munge (scripts/setup.sh)"
  done

  prepare_state_dir
  local node any=0 d
  node=$(node_name)
  for d in "${daemons[@]}"; do ours "$d" && any=1; done
  if [ "$any" = 0 ] || [ ! -s "$conf" ]; then
    choose_port
    write_config "$node"
  else
    node=$(sed -n 's/^NodeName=\([^ ]*\).*/\1/p' "$conf")
  fi

  if ours munged; then
    say "munged already running (pid $(recorded_pid munged))"
  else
    rm -f "$state/munge/munge.socket" "$state/munge/munge.socket.lock"
    launch munged munged --foreground --force \
      --key-file="$state/munge/munge.key" --socket="$state/munge/munge.socket" \
      --pid-file="$state/run/munged.pid" --log-file="$state/log/munged.log" \
      --seed-file="$state/munge/munged.seed"
    wait_for "munge credentials" munge_ok munged
    say "munged started (pid $(recorded_pid munged))"
  fi

  if ours slurmctld; then
    say "slurmctld already running (pid $(recorded_pid slurmctld))"
  else
    launch slurmctld slurmctld -D -f "$conf"
    wait_for "slurmctld answering" ctld_ok slurmctld
    say "slurmctld started (pid $(recorded_pid slurmctld))"
  fi

  if ours slurmd; then
    say "slurmd already running (pid $(recorded_pid slurmd))"
  else
    launch slurmd slurmd -D -f "$conf" -N "$node"
    say "slurmd started (pid $(recorded_pid slurmd))"
  fi
  wait_for "node $node idle" "node_idle $node" slurmd
  say "node $node is $(node_state "$node"): $(SLURM_CONF=$conf sinfo -h -N -n "$node" \
    -o '%c CPUs, %m MB, gres %G' | head -n 1)"
  say "MpiDefault=$(sed -n 's/^MpiDefault=//p' "$conf"); state and logs in $state"
  say "use it with:  export SLURM_CONF=$conf"
}

# --- stopping and status --------------------------------------------------------------------

stop() {
  [ -d "$pids" ] || {
    say "nothing recorded under $state; nothing to stop"
    return 0
  }
  local i name pid waited jobs stopped=0
  # Jobs first: their slurmstepd processes outlive slurmd, so they must end while it runs.
  if ours slurmctld && ours slurmd; then
    jobs=$(SLURM_CONF=$conf squeue -h -o %i 2>/dev/null | tr '\n' ' ')
    if [ -n "${jobs// /}" ]; then
      say "cancelling the jobs still in the queue: $jobs"
      # shellcheck disable=SC2086
      SLURM_CONF=$conf scancel --quiet $jobs 2>/dev/null || true
      waited=0
      while [ "$waited" -lt 120 ] &&
        { [ -n "$(SLURM_CONF=$conf squeue -h -o %i 2>/dev/null)" ] ||
          [ "$(node_state "$(sed -n 's/^NodeName=\([^ ]*\).*/\1/p' "$conf")")" = completing ]; }; do
        sleep 0.25
        waited=$((waited + 1))
      done
    fi
  fi
  # Reverse order: slurmd, then slurmctld, then munged, which the other two need to the end.
  for ((i = ${#daemons[@]} - 1; i >= 0; i--)); do
    name=${daemons[$i]}
    if ! pid=$(recorded_pid "$name"); then continue; fi
    if ours "$name"; then
      kill -TERM "$pid" 2>/dev/null || true
      waited=0
      while alive "$pid" && [ "$waited" -lt 40 ]; do
        sleep 0.25
        waited=$((waited + 1))
      done
      if alive "$pid"; then
        kill -KILL "$pid" 2>/dev/null || true
        say "$name (pid $pid) did not stop on SIGTERM in 10s; killed"
      else
        say "$name (pid $pid) stopped"
      fi
    else
      say "$name (pid $pid) was not running"
    fi
    rm -f "$pids/$name.pid"
    stopped=$((stopped + 1))
  done
  [ "$stopped" -gt 0 ] || say "no daemon recorded under $state; nothing to stop"
}

status() {
  local name pid rc=0
  for name in "${daemons[@]}"; do
    if ours "$name"; then
      say "$name running (pid $(recorded_pid "$name"))"
    elif pid=$(recorded_pid "$name"); then
      say "$name recorded as pid $pid but not running"
      rc=1
    else
      say "$name not started"
      rc=1
    fi
  done
  if [ -s "$conf" ] && ours slurmctld; then
    SLURM_CONF=$conf sinfo -N -o '%N %P %T %c %m %G' || rc=1
    SLURM_CONF=$conf squeue || rc=1
  fi
  say "state folder $state; export SLURM_CONF=$conf"
  return "$rc"
}

case "$action" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  env)
    [ -s "$conf" ] || die "no cluster configured under $state; run: $0 start"
    echo "export SLURM_CONF=$conf"
    ;;
esac
