# shellcheck shell=bash
# The shared body of the sbatch templates in this folder (train-*.sbatch): sourced by them, never
# run by itself. It finds the job file, the output folder and the alignpro executable, validates
# the job once before any rank starts, launches one alignpro process per SLURM task, forwards
# SLURM's warning signals so that the run checkpoints, and requeues the job when it stopped
# early with a checkpoint.
#
# Arguments of a template:  [JOB.toml [OUTPUT_DIR]] [--] [alignpro options...]
#   JOB.toml     the job file; default $ALIGNPRO_JOB, then jobs/demo.toml of this checkout
#   OUTPUT_DIR   folder of the results file OUTPUT_DIR/NAME.h5 (NAME: the job's run.name);
#                default $ALIGNPRO_OUTPUT_DIR, then the job's own run.output
#   options      passed to alignpro as they are, e.g. --set run.steps=500
#
# Environment (all optional):
#   ALIGNPRO_BIN           the alignpro executable; default `alignpro` on PATH, then
#                          build/src/alignpro of the checkout this folder belongs to
#   ALIGNPRO_LAUNCHER      srun (srun --mpi=pmix), mpirun (Open MPI's mpirun inside the
#                          allocation), or auto (default): srun when SLURM has its pmix plugin
#   ALIGNPRO_COMMAND       the alignpro command; default train. `check` validates the job on
#                          every rank for the job's world size; `version` takes no job and
#                          shows what each rank sees (a smoke test of the launch)
#   ALIGNPRO_MODULES       environment modules to load first, e.g. "openmpi/4.1 cuda/12.2"
#   ALIGNPRO_MAX_RESTARTS  times a job may requeue itself after a checkpoint; default 20
#
# Exit status: alignpro's (0 done, 1 failed, 2 bad input, 3 stopped with a checkpoint).

# The exit status alignpro uses for "stopped on a signal after writing a checkpoint".
readonly ALIGNPRO_EXIT_PREEMPTED=3

_ap_say() { echo "$_ap_template: $*"; }
_ap_fail() {
  local code=$1
  shift
  echo "$_ap_template: error: $*" >&2
  exit "$code"
}

# One field of `scontrol show job`, e.g. Command or StdOut; empty when SLURM does not say.
_ap_job_field() {
  scontrol show job -o "$SLURM_JOB_ID" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$1=//p" | head -n 1
}

_ap_parse_args() {
  _ap_job=${ALIGNPRO_JOB:-}
  _ap_output_dir=${ALIGNPRO_OUTPUT_DIR:-}
  _ap_extra=()
  if [ $# -gt 0 ] && [ "$1" != -- ] && [[ "$1" != -* ]]; then
    _ap_job=$1
    shift
    if [ $# -gt 0 ] && [ "$1" != -- ] && [[ "$1" != -* ]]; then
      _ap_output_dir=$1
      shift
    fi
  fi
  [ "${1:-}" = -- ] && shift
  _ap_extra=("$@")
}

_ap_takes_job() {
  case "$_ap_command" in
    version | reference) return 1 ;;
    *) return 0 ;;
  esac
}

_ap_resolve_job() {
  if [ -z "$_ap_job" ]; then
    _ap_job=$_ap_repo/jobs/demo.toml
    [ -f "$_ap_job" ] || _ap_fail 2 "no job file given (first argument or ALIGNPRO_JOB) and" \
      "the default $_ap_job does not exist"
  fi
  [ -f "$_ap_job" ] || _ap_fail 2 "job file '$_ap_job' not found (relative paths are taken" \
    "from the submit folder $PWD)"
  _ap_job=$(cd "$(dirname -- "$_ap_job")" && pwd)/$(basename -- "$_ap_job")
  if [ -n "$_ap_output_dir" ]; then
    mkdir -p -- "$_ap_output_dir" || _ap_fail 2 "cannot create the output folder '$_ap_output_dir'"
    _ap_output_dir=$(cd -- "$_ap_output_dir" && pwd)
  fi
}

_ap_load_modules() {
  [ -n "${ALIGNPRO_MODULES:-}" ] || return 0
  if ! type module >/dev/null 2>&1; then
    local init
    for init in /etc/profile.d/lmod.sh /etc/profile.d/modules.sh; do
      # shellcheck disable=SC1090
      [ -r "$init" ] && source "$init" && break
    done
  fi
  type module >/dev/null 2>&1 ||
    _ap_fail 1 "ALIGNPRO_MODULES='$ALIGNPRO_MODULES' is set but this node has no 'module' command"
  # shellcheck disable=SC2086
  module load $ALIGNPRO_MODULES || _ap_fail 1 "module load $ALIGNPRO_MODULES failed"
}

_ap_find_binary() {
  if [ -n "${ALIGNPRO_BIN:-}" ]; then
    _ap_bin=$ALIGNPRO_BIN
  elif command -v alignpro >/dev/null 2>&1; then
    _ap_bin=$(command -v alignpro)
  else
    _ap_bin=$_ap_repo/build/src/alignpro
  fi
  [ -x "$_ap_bin" ] || _ap_fail 2 "alignpro executable '$_ap_bin' not found or not executable;" \
    "set ALIGNPRO_BIN, put alignpro on PATH, or build it (scripts/build.sh)"
}

_ap_choose_launcher() {
  local wanted=${ALIGNPRO_LAUNCHER:-auto} why
  case "$wanted" in
    auto)
      if srun --mpi=list 2>&1 | grep -qw pmix; then
        wanted=srun
        why="auto: SLURM's pmix plugin is present"
      elif command -v mpirun >/dev/null 2>&1; then
        wanted=mpirun
        why="auto: SLURM has no pmix plugin (srun --mpi=list), so Open MPI's mpirun"
      else
        _ap_fail 1 "SLURM has no pmix plugin (srun --mpi=list) and there is no mpirun on PATH;" \
          "load an MPI module (ALIGNPRO_MODULES) or ask the site for pmix"
      fi
      ;;
    srun) why="ALIGNPRO_LAUNCHER=srun" ;;
    mpirun)
      command -v mpirun >/dev/null 2>&1 ||
        _ap_fail 1 "ALIGNPRO_LAUNCHER=mpirun but there is no mpirun on PATH"
      why="ALIGNPRO_LAUNCHER=mpirun"
      ;;
    *) _ap_fail 2 "ALIGNPRO_LAUNCHER: found '$wanted'; allowed: auto, srun, mpirun" ;;
  esac
  _ap_ranks=${SLURM_NTASKS:-${SLURM_NPROCS:-1}}
  local cpus=${SLURM_CPUS_PER_TASK:-1}
  if [ "$wanted" = srun ]; then
    # Since SLURM 22.05 srun no longer inherits --cpus-per-task from the batch allocation.
    [ -n "${SLURM_CPUS_PER_TASK:-}" ] && export SRUN_CPUS_PER_TASK=$SLURM_CPUS_PER_TASK
    # No --kill-on-bad-exit: a rank that exits first (for instance with status 3 after the
    # coordinator has written the checkpoint) must not take the others down mid-write.
    _ap_launch=(srun --mpi=pmix --ntasks="$_ap_ranks")
  else
    _ap_launch=(mpirun -np "$_ap_ranks" --map-by "slot:PE=$cpus" --bind-to core)
    [ "$(id -u)" = 0 ] && _ap_launch+=(--allow-run-as-root)
  fi
  _ap_launcher_why=$why
}

# Validates the job once, on this node, before any rank starts: a broken job fails here in a
# second with alignpro's message, instead of on every rank after the step is launched.
_ap_preflight() {
  local sets=() i=0 out
  while [ $i -lt ${#_ap_extra[@]} ]; do
    case "${_ap_extra[$i]}" in
      --set) sets+=(--set "${_ap_extra[$((i + 1))]:-}"); i=$((i + 2)) ;;
      --set=*) sets+=("${_ap_extra[$i]}"); i=$((i + 1)) ;;
      *) i=$((i + 1)) ;;
    esac
  done
  if ! out=$("$_ap_bin" check "$_ap_job" --ranks "$_ap_ranks" "${_ap_sets[@]}" "${sets[@]}" \
    2>&1); then
    echo "$out" >&2
    _ap_fail 2 "the job does not validate for $_ap_ranks ranks (alignpro check, above);" \
      "nothing was started"
  fi
  _ap_run_name=$(_ap_toml_value run name <<<"$out")
  _ap_results=$(_ap_toml_value run output <<<"$out")
}

# KEY's string value in [SECTION] of a resolved configuration (alignpro check's output).
_ap_toml_value() {
  awk -v section="[$1]" -v key="$2" '
    /^\[/ { in_section = ($0 == section) }
    in_section && $1 == key && $2 == "=" {
      value = substr($0, index($0, "=") + 1)
      sub(/^ *"/, "", value); sub(/" *$/, "", value)
      print value; exit
    }'
}

# How to continue by hand: the same submission again; alignpro resumes from the checkpoint.
_ap_continue_hint() {
  local script a
  script=$(_ap_job_field Command)
  [ -n "$script" ] || script=$_ap_template
  printf 'sbatch [the same sbatch options] %q' "$script"
  for a in "${_ap_args[@]}"; do printf ' %q' "$a"; done
  echo " (run.resume = auto picks up the checkpoint)"
}

_ap_on_signal() {
  _ap_signal=$1
  _ap_interrupted=1
  if [ -n "${_ap_step_pid:-}" ]; then
    _ap_say "received SIG$1; asking alignpro to write a checkpoint and stop (SIGUSR1 to the step)"
    kill -USR1 "$_ap_step_pid" 2>/dev/null || true
  fi
}

_ap_run_step() {
  _ap_signal=""
  _ap_interrupted=0
  trap '_ap_on_signal USR1' USR1
  trap '_ap_on_signal TERM' TERM
  "${_ap_launch[@]}" "${_ap_cmdline[@]}" &
  _ap_step_pid=$!
  while :; do
    _ap_rc=0
    wait "$_ap_step_pid" || _ap_rc=$?
    # A trap cuts `wait` short; wait again for the step's own exit status.
    if [ "$_ap_interrupted" = 1 ]; then
      _ap_interrupted=0
      continue
    fi
    break
  done
  trap - USR1 TERM
}

_ap_finish() {
  local restarts=${SLURM_RESTART_COUNT:-0} max=${ALIGNPRO_MAX_RESTARTS:-20}
  local where=${_ap_results:-the results file}
  if [ "$_ap_rc" = 0 ]; then
    _ap_say "done: alignpro $_ap_command exited 0${_ap_results:+; results in $_ap_results}"
    return 0
  fi
  if [ "$_ap_rc" != "$ALIGNPRO_EXIT_PREEMPTED" ] || ! _ap_takes_job; then
    _ap_say "alignpro $_ap_command failed with exit status $_ap_rc (1: run-time failure," \
      "2: bad input; the messages above say why)"
    exit "$_ap_rc"
  fi
  _ap_say "alignpro stopped with a checkpoint (exit status 3); $where can be resumed"
  if [ "$_ap_signal" = TERM ]; then
    # SIGTERM means scancel, a time limit reached, or preemption; SLURM itself requeues a
    # preempted job, and a cancelled one must stay cancelled.
    _ap_say "stopped by SIGTERM (scancel, time limit or preemption); not requeueing it here"
    _ap_say "to continue: $(_ap_continue_hint)"
    exit "$_ap_rc"
  fi
  if [ "$restarts" -ge "$max" ]; then
    _ap_say "this job has been requeued $restarts times (ALIGNPRO_MAX_RESTARTS=$max); stopping"
    _ap_say "to continue: $(_ap_continue_hint)"
    exit "$_ap_rc"
  fi
  _ap_say "requeueing job $SLURM_JOB_ID (restart $((restarts + 1)) of at most $max); it resumes" \
    "from the checkpoint when it starts again (SLURM holds a requeued job back for a while;" \
    "'scontrol release' or 'scontrol update JobId=$SLURM_JOB_ID StartTime=now' hurries it)"
  _ap_say "or cancel it and continue later with: $(_ap_continue_hint)"
  if ! scontrol requeue "$SLURM_JOB_ID"; then
    _ap_say "scontrol requeue failed; continue with: $(_ap_continue_hint)"
    exit "$_ap_rc"
  fi
  # SLURM stops this script as part of the requeue; nothing below normally runs.
  exit 0
}

# alignpro_launch TEMPLATE_NAME REPO_DIR [template arguments...]
alignpro_launch() {
  _ap_template=$1
  _ap_repo=$2
  shift 2
  _ap_args=("$@")
  _ap_command=${ALIGNPRO_COMMAND:-train}
  [[ "$_ap_command" =~ ^[a-z][a-z-]*$ ]] ||
    _ap_fail 2 "ALIGNPRO_COMMAND: found '$_ap_command'; allowed: an alignpro command such as train"
  _ap_parse_args "$@"
  _ap_load_modules
  _ap_find_binary
  _ap_choose_launcher

  _ap_sets=()
  _ap_results=""
  _ap_run_name=""
  if [ -n "${SLURM_CPUS_PER_TASK:-}" ] && _ap_takes_job; then
    export OMP_NUM_THREADS=$SLURM_CPUS_PER_TASK
    _ap_sets+=(--set "runtime.threads=$SLURM_CPUS_PER_TASK")
  fi
  if _ap_takes_job; then
    _ap_resolve_job
    if [ -n "$_ap_output_dir" ]; then
      # The file name comes from the job's run.name, which the preflight reads.
      _ap_preflight
      _ap_sets+=(--set "run.output=$_ap_output_dir/$_ap_run_name.h5")
    fi
    _ap_preflight
    [ "$_ap_command" = train ] || _ap_results=""
    _ap_cmdline=("$_ap_bin" "$_ap_command" "$_ap_job" "${_ap_sets[@]}" "${_ap_extra[@]}")
    # Each rank of `check` validates for the world size of the job, not for one process.
    [ "$_ap_command" = check ] && _ap_cmdline+=(--ranks "$_ap_ranks")
  else
    _ap_cmdline=("$_ap_bin" "$_ap_command" "${_ap_extra[@]}")
  fi

  local nodes=${SLURM_JOB_NODELIST:-$(hostname -s)}
  _ap_say "job ${SLURM_JOB_ID} (${SLURM_JOB_NAME:-}), restart ${SLURM_RESTART_COUNT:-0}:" \
    "$_ap_ranks rank(s) on ${SLURM_JOB_NUM_NODES:-1} node(s) $nodes"
  _ap_say "launcher: ${_ap_launch[*]} ($_ap_launcher_why)"
  _ap_say "command: ${_ap_cmdline[*]}"
  [ -n "$_ap_results" ] && _ap_say "results: $_ap_results"
  _ap_say "progress: tail -f $(_ap_job_field StdOut)"
  _ap_run_step
  _ap_finish
}
