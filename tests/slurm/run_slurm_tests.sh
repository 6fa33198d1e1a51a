#!/usr/bin/env bash
# End-to-end tests of slurm/ (the sbatch templates, the sweep and the local cluster) against a
# real one-node SLURM cluster, which this script starts in a temporary folder and stops, by the
# process ids it recorded, however the tests end.
#
#   tests/slurm/run_slurm_tests.sh ALIGNPRO_BINARY
#
# One line per test (PASS, FAIL or SKIPPED, with the reason), then "N passed, N failed,
# N skipped". Exit status 0 when nothing failed, 1 otherwise, and 77 (CTest's skip) when this
# machine cannot run a cluster at all (not root, or slurm-wlm/munge missing).
# ALIGNPRO_KEEP_TEST_DIR=1 keeps the temporary folder (logs, cluster state) for a post-mortem.
# ALIGNPRO_E2E_ONLY="test_a test_b" runs only the tests named (the rest are not counted).
set -uo pipefail

if [ $# -ne 1 ] || [ ! -x "$1" ]; then
  echo "usage: $0 ALIGNPRO_BINARY (an executable; got '${1:-}')" >&2
  exit 2
fi
alignpro=$(cd -- "$(dirname -- "$1")" && pwd)/$(basename -- "$1")
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd -- "$here/../.." && pwd)
slurm_dir=$repo/slurm
stand_in=$here/stand-in-alignpro.sh

# The job and the comparison the train-based tests use (see their section below).
train_job=${ALIGNPRO_E2E_TRAIN_JOB:-$repo/jobs/demo.toml}
train_steps=${ALIGNPRO_E2E_TRAIN_STEPS:-4}
# The interrupted run needs steps left after its first one when the signal comes (a demo step
# takes about 0.15 s on 2 cores).
resume_steps=${ALIGNPRO_E2E_RESUME_STEPS:-150}

# Hang guards, not measurements: a job that has not finished by then is a failure.
job_timeout=${ALIGNPRO_E2E_JOB_TIMEOUT:-300}

passed=0
failed=0
skipped=0

for tool in munged slurmctld slurmd sbatch scontrol scancel sinfo; do
  if ! command -v "$tool" >/dev/null; then
    echo "SKIPPED all SLURM tests: '$tool' is missing (install slurm-wlm and munge:" \
      "scripts/setup.sh)"
    echo "0 passed, 0 failed, 1 skipped"
    exit 77
  fi
done
if [ "$(id -u)" != 0 ]; then
  echo "SKIPPED all SLURM tests: the local cluster needs root (slurmd starts steps as users)"
  echo "0 passed, 0 failed, 1 skipped"
  exit 77
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/alignpro-slurm-e2e.XXXXXX")
state=$work/cluster

cleanup() {
  local rc=$?
  if [ -d "$state/pids" ]; then
    # Stopping also cancels what is left in the queue, so no job step outlives the cluster.
    bash "$slurm_dir/local-cluster.sh" stop --state-dir "$state" >"$work/stop.log" 2>&1 ||
      cat "$work/stop.log" >&2
  fi
  if [ "${ALIGNPRO_KEEP_TEST_DIR:-0}" = 1 ] || [ "$failed" -gt 0 ]; then
    echo "test folder kept for inspection: $work"
  else
    rm -rf -- "$work"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if ! bash "$slurm_dir/local-cluster.sh" start --state-dir "$state" >"$work/start.log" 2>&1; then
  cat "$work/start.log" >&2
  echo "FAIL local cluster: slurm/local-cluster.sh start failed (above)"
  failed=1
  echo "0 passed, 1 failed, 0 skipped"
  exit 1
fi
export SLURM_CONF=$state/slurm.conf
# Jobs inherit the submitting environment; none of a caller's steering may leak in.
unset ALIGNPRO_JOB ALIGNPRO_OUTPUT_DIR ALIGNPRO_LAUNCHER ALIGNPRO_COMMAND ALIGNPRO_MODULES \
  ALIGNPRO_MAX_RESTARTS ALIGNPRO_SLURM_DIR
export ALIGNPRO_BIN=$alignpro
cd "$work" || exit 1

# --- helpers ------------------------------------------------------------------------------

# A failed expectation: says why, and makes the test fail (each test ends at its first one).
why() {
  echo "    $*"
  return 1
}

job_field() {
  scontrol show job -o "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1
}

log_of() { job_field "$1" StdOut; }

# Waits until job $1 has ended; prints its final state. With "hurry", a requeued job that SLURM
# holds back (BeginTime, about two minutes) is released early: once it has been pending for 3 s
# and the node is idle. Released within the second of its requeue, slurmd can refuse the new
# start ("Job credential revoked": its previous run's credential was revoked in that second).
wait_job() {
  local id=$1 mode=${2:-} waited=0 pending_since="" s reason
  while :; do
    s=$(job_field "$id" JobState)
    case "$s" in
      COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE)
        # The batch script may still be writing its last lines while the job completes.
        while [ "$(sinfo -h -o %T | head -n 1)" = completing ] && [ $waited -lt "$job_timeout" ]; do
          sleep 0.5
          waited=$((waited + 1))
        done
        echo "$s"
        return 0
        ;;
      PENDING)
        # Pending counts from when the job was last seen in another state (its requeue), not
        # from its submission; SECONDS ticks in whole seconds, so 4 is at least 3 s.
        reason=$(job_field "$id" Reason)
        pending_since=${pending_since:-$SECONDS}
        if [ "$mode" = hurry ] && [ "$reason" = BeginTime ] &&
          [ $((SECONDS - pending_since)) -ge 4 ] &&
          [ "$(sinfo -h -o %T | head -n 1)" = idle ]; then
          scontrol update JobId="$id" StartTime=now 2>/dev/null || true
        fi
        ;;
      "")
        echo "UNKNOWN"
        return 1
        ;;
      *) pending_since="" ;;
    esac
    if [ $((waited / 2)) -ge "$job_timeout" ]; then
      echo "TIMEOUT-OF-TEST ($s)"
      return 1
    fi
    sleep 0.5
    waited=$((waited + 1))
  done
}

# Waits until file $1 exists (a rank's marker), at most the job timeout.
wait_file() {
  local waited=0
  until [ -e "$1" ]; do
    [ $((waited / 2)) -lt "$job_timeout" ] || return 1
    sleep 0.5
    waited=$((waited + 1))
  done
}

# What SLURM's daemons logged about job $1, in time order: the reason a job failed before its
# script ran (a refused launch, a revoked credential) is only there.
daemon_lines() {
  grep -hE "(JobId=|job[ _]?|StepId=)$1([^0-9]|$)" "$state/log/slurmctld.log" \
    "$state/log/slurmd.log" 2>/dev/null | sort | tail -n 25 | sed 's/^/      ! /'
}

expect_state() {
  local id=$1 want=$2 got
  got=$(wait_job "$id" "${3:-}")
  [ "$got" = "$want" ] || why "job $id ended $got, expected $want; log $(log_of "$id"):" \
    "$(tail -n 15 "$(log_of "$id")" 2>/dev/null | sed 's/^/      | /')" \
    $'\n'"    $(job_field "$id" Reason) (reason); the daemons on job $id:"$'\n'"$(daemon_lines "$id")"
}

expect_exit_code() {
  local got
  got=$(job_field "$1" ExitCode)
  [ "$got" = "$2" ] || why "job $1 has ExitCode=$got, expected $2"
}

expect_in_log() {
  local id=$1 text=$2 file
  file=$(log_of "$id")
  grep -qF -- "$text" "$file" 2>/dev/null || why "log of job $id ($file) lacks '$text'"
}

expect_not_in_log() {
  local id=$1 text=$2 file
  file=$(log_of "$id")
  ! grep -qF -- "$text" "$file" 2>/dev/null || why "log of job $id ($file) has '$text'"
}

# expect_count JOB TEXT N: the log holds TEXT on exactly N lines.
expect_count() {
  local id=$1 text=$2 want=$3 got
  got=$(grep -cF -- "$text" "$(log_of "$id")" 2>/dev/null)
  [ "$got" = "$want" ] || why "log of job $id has '$text' on $got lines, expected $want"
}

submit() {
  local id
  id=$(sbatch --parsable "$@" 2>"$work/sbatch.err") || {
    why "sbatch $* failed: $(cat "$work/sbatch.err")"
    return 1
  }
  echo "${id%%;*}"
}

run_test() {
  local name=$1
  if [ -n "${ALIGNPRO_E2E_ONLY:-}" ] && [[ " $ALIGNPRO_E2E_ONLY " != *" $name "* ]]; then
    return 0
  fi
  echo "RUN  $name"
  if "$name"; then
    echo "PASS $name"
    passed=$((passed + 1))
  else
    echo "FAIL $name"
    failed=$((failed + 1))
  fi
}

# A valid job for `alignpro check` (the pool prompter and a rule reward need no model files
# beyond a target folder), and a malformed one.
mkdir -p "$work/job/model"
echo "What is the capital of France?" >"$work/job/prompts.txt"
cat >"$work/job/job.toml" <<'EOF'
[run]
steps = 2

[data]
train = "prompts.txt"

[prompter]
kind = "pool"
pool = ["{prompt}", "Answer briefly: {prompt}"]

[target]
model = "model"

[reward]
kind = "keywords"
keywords = ["Paris"]

[optim]
batch_prompts = 3
EOF
printf '[run\nsteps = 2\n' >"$work/job/broken.toml"

if srun --mpi=list 2>&1 | grep -qw pmix; then expected_launcher="srun --mpi=pmix"; else
  expected_launcher="mpirun"
fi

# --- tests that need only `alignpro check` and `alignpro version` ---------------------------

test_templates_refuse_outside_slurm() {
  local t out rc
  for t in train-cpu train-gpu train-multinode; do
    out=$(env -u SLURM_JOB_ID bash "$slurm_dir/$t.sbatch" "$work/job/job.toml" 2>&1)
    rc=$?
    [ "$rc" = 2 ] || why "$t.sbatch outside SLURM exited $rc, expected 2: $out" || return 1
    grep -q "refusing to run outside a SLURM job" <<<"$out" ||
      why "$t.sbatch outside SLURM gave no reason: $out" || return 1
    grep -q "sbatch slurm/$t.sbatch" <<<"$out" ||
      why "$t.sbatch outside SLURM does not say how to submit it: $out" || return 1
  done
}

test_version_on_two_tasks() {
  local id
  id=$(ALIGNPRO_COMMAND=version submit --ntasks=2 "$slurm_dir/train-cpu.sbatch") || return 1
  expect_state "$id" COMPLETED || return 1
  expect_exit_code "$id" 0:0 || return 1
  expect_in_log "$id" "launcher: $expected_launcher" || return 1
  expect_in_log "$id" "2 rank(s) on 1 node(s)" || return 1
  # One version banner per task.
  expect_count "$id" "alignpro $("$alignpro" version | head -n 1 | cut -d' ' -f2) (git" 2
}

test_version_on_two_tasks_with_mpirun() {
  local id
  id=$(ALIGNPRO_COMMAND=version ALIGNPRO_LAUNCHER=mpirun submit --ntasks=2 \
    "$slurm_dir/train-cpu.sbatch") || return 1
  expect_state "$id" COMPLETED || return 1
  expect_in_log "$id" "launcher: mpirun -np 2" || return 1
  expect_count "$id" "MPI Open MPI" 2
}

# The GPU templates, with their GPU request taken back, on this CPU-only test node: what they
# do besides asking for GPUs must work too.
test_gpu_templates_launch_without_gpus() {
  local t id
  for t in train-gpu train-multinode; do
    id=$(ALIGNPRO_COMMAND=version submit --nodes=1 --ntasks-per-node=2 --gpus-per-task=0 \
      --cpus-per-task=1 --mem-per-cpu=1G "$slurm_dir/$t.sbatch") || return 1
    expect_state "$id" COMPLETED || return 1
    expect_in_log "$id" "$t.sbatch: job $id" || return 1
    expect_count "$id" "CUDA " 2 || return 1
  done
}

test_check_runs_on_every_rank() {
  local id out=$work/out-check
  id=$(ALIGNPRO_COMMAND=check submit --ntasks=2 "$slurm_dir/train-cpu.sbatch" \
    "$work/job/job.toml" "$out") || return 1
  expect_state "$id" COMPLETED || return 1
  expect_count "$id" "valid for 2 ranks" 2 || return 1
  # OUTPUT_DIR names the results file after the job's run.name (the file's stem here).
  expect_count "$id" "output = \"$out/job.h5\"" 2
}

test_broken_job_fails_fast() {
  local id command
  # Through `check`, and through the default command: the template validates before it
  # launches anything, so even a training job fails in its first second.
  for command in check ""; do
    id=$(ALIGNPRO_COMMAND=$command submit --ntasks=2 "$slurm_dir/train-cpu.sbatch" \
      "$work/job/broken.toml") || return 1
    expect_state "$id" FAILED || return 1
    expect_exit_code "$id" 2:0 || return 1
    expect_in_log "$id" "$work/job/broken.toml:1:" || return 1
    expect_in_log "$id" "TOML syntax error" || return 1
    expect_in_log "$id" "nothing was started" || return 1
    expect_not_in_log "$id" "train-cpu.sbatch: command:" || return 1
  done
}

# Submits a sweep; prints its job ids.
sweep_ids() {
  local out
  out=$(bash "$slurm_dir/sweep.sh" "$@" 2>&1) || {
    why "sweep.sh $* failed: $out"
    return 1
  }
  echo "$out" >"$work/sweep.out"
  sed -n 's/^sweep: job ids: //p' <<<"$out"
}

test_sweep_strong_one_and_two_ranks() {
  local ids id n=1 dir=$work/sweep-strong
  ids=$(ALIGNPRO_COMMAND=check sweep_ids --output-dir "$dir" "$work/job/job.toml" 1 2) ||
    return 1
  read -ra ids <<<"$ids"
  set -- "${ids[@]}"
  [ $# = 2 ] || why "sweep printed $# job ids, expected 2: $(cat "$work/sweep.out")" || return 1
  for id in "$@"; do
    expect_state "$id" COMPLETED || return 1
    [ "$(log_of "$id")" = "$dir/job-ws$n-$id.out" ] ||
      why "job $id logs to $(log_of "$id"), expected $dir/job-ws$n-$id.out" || return 1
    expect_count "$id" "valid for $n rank" "$n" || return 1
    expect_count "$id" "output = \"$dir/job-ws$n.h5\"" "$n" || return 1
    expect_count "$id" "batch_prompts = 3" "$n" || return 1
    n=$((n + 1))
  done
}

test_sweep_weak_grows_the_batch() {
  local ids id n=1 dir=$work/sweep-weak
  ids=$(ALIGNPRO_COMMAND=check sweep_ids --weak --output-dir "$dir" "$work/job/job.toml" 1 2) ||
    return 1
  read -ra ids <<<"$ids"
  set -- "${ids[@]}"
  [ $# = 2 ] || why "sweep printed $# job ids, expected 2" || return 1
  for id in "$@"; do
    expect_state "$id" COMPLETED || return 1
    expect_count "$id" "output = \"$dir/job-weak-ws$n.h5\"" "$n" || return 1
    expect_count "$id" "batch_prompts = $((3 * n))" "$n" || return 1
    n=$((n + 1))
  done
}

# --- the templates' preemption handling, driven through a stand-in for alignpro ------------

test_usr1_checkpoints_requeues_and_resumes() {
  local id out=$work/out-usr1
  id=$(ALIGNPRO_BIN=$stand_in submit --ntasks=2 "$slurm_dir/train-cpu.sbatch" \
    "$work/job/job.toml" "$out") || return 1
  wait_file "$out/stand-in.h5.rank0.waiting" && wait_file "$out/stand-in.h5.rank1.waiting" ||
    why "the ranks of job $id did not start: $(cat "$(log_of "$id")")" || return 1
  # What --signal=B:USR1@T does at T seconds before the time limit.
  scancel --batch --signal=USR1 "$id"
  expect_state "$id" COMPLETED hurry || return 1
  [ "$(job_field "$id" Restarts)" = 1 ] ||
    why "job $id has Restarts=$(job_field "$id" Restarts), expected 1" || return 1
  expect_in_log "$id" "received SIGUSR1" || return 1
  expect_in_log "$id" "rank 0 got SIGUSR1, wrote its checkpoint" || return 1
  expect_in_log "$id" "rank 1 got SIGUSR1, wrote its checkpoint" || return 1
  expect_in_log "$id" "requeueing job $id" || return 1
  expect_in_log "$id" "rank 0 resumed from its checkpoint" || return 1
  expect_in_log "$id" "rank 1 resumed from its checkpoint" || return 1
  expect_in_log "$id" "restart 1:" || return 1
}

test_time_limit_warning_requeues() {
  local id out=$work/out-limit
  # A one-minute limit with the warning 50 s before it: SLURM itself sends the USR1.
  id=$(ALIGNPRO_BIN=$stand_in submit --ntasks=1 --time=1 --signal=B:USR1@50 \
    "$slurm_dir/train-cpu.sbatch" "$work/job/job.toml" "$out") || return 1
  expect_state "$id" COMPLETED hurry || return 1
  expect_in_log "$id" "received SIGUSR1" || return 1
  expect_in_log "$id" "rank 0 got SIGUSR1" || return 1
  expect_in_log "$id" "rank 0 resumed from its checkpoint" || return 1
  [ "$(job_field "$id" Restarts)" = 1 ] || why "job $id was not requeued once"
}

test_scancel_is_not_requeued() {
  local id out=$work/out-cancel
  id=$(ALIGNPRO_BIN=$stand_in submit --ntasks=1 "$slurm_dir/train-cpu.sbatch" \
    "$work/job/job.toml" "$out") || return 1
  wait_file "$out/stand-in.h5.rank0.waiting" || why "job $id did not start" || return 1
  scancel "$id"
  expect_state "$id" CANCELLED || return 1
  expect_in_log "$id" "rank 0 got SIGTERM, wrote its checkpoint" || return 1
  expect_in_log "$id" "not requeueing it here" || return 1
  expect_in_log "$id" "to continue: sbatch [the same sbatch options] $slurm_dir/train-cpu.sbatch" ||
    return 1
  [ "$(job_field "$id" Restarts)" = 0 ] || why "cancelled job $id was requeued"
}

test_preemption_requeues_and_resumes() {
  local id urgent out=$work/out-preempt
  id=$(ALIGNPRO_BIN=$stand_in submit --ntasks=2 "$slurm_dir/train-cpu.sbatch" \
    "$work/job/job.toml" "$out") || return 1
  wait_file "$out/stand-in.h5.rank0.waiting" || why "job $id did not start" || return 1
  # A job of the higher-tier partition wants the whole node: SLURM preempts (requeues) job $id.
  urgent=$(submit --partition=urgent --ntasks=2 --output="$work/urgent-%j.out" \
    --wrap "echo urgent ran") || return 1
  expect_state "$urgent" COMPLETED || return 1
  expect_state "$id" COMPLETED hurry || return 1
  [ "$(job_field "$id" Restarts)" = 1 ] ||
    why "job $id has Restarts=$(job_field "$id" Restarts), expected 1" || return 1
  expect_in_log "$id" "rank 0 got SIGTERM, wrote its checkpoint" || return 1
  expect_in_log "$id" "rank 1 got SIGTERM, wrote its checkpoint" || return 1
  expect_in_log "$id" "rank 0 resumed from its checkpoint" || return 1
  expect_in_log "$id" "rank 1 resumed from its checkpoint"
}

# --- tests of `alignpro train` --------------------------------------------------------------
# They run only when this build has the train command (`alignpro train --help` describes it); until
# then each prints a SKIPPED line and counts as skipped, never as passed. They train
# $train_job (ALIGNPRO_E2E_TRAIN_JOB) for $train_steps steps and read the results file's root
# attributes and tables (see the results format reference) with the HDF5 command-line tools.

# The training results two runs must agree on: every table column that depends neither on the
# world size (rank, timings, hosts) nor on the wall clock.
results_compare=(/metrics/reward_mean /metrics/kl_mean /metrics/loss /metrics/grad_norm
  /samples/prompt_index /samples/candidate /samples/rewrite /samples/response /samples/reward)

# A scalar root attribute of a results file ("" when missing); readable while a run writes.
# The attributes that change during a run are fixed-length strings, padded with NULs.
h5_attr() {
  HDF5_USE_FILE_LOCKING=FALSE h5dump -a "/$2" "$1" 2>/dev/null |
    sed -n 's/^ *(0): *//p' | tr -d '"' | sed 's/\\000//g' | head -n 1
}

# The same for a file that a run is writing (SWMR), which h5dump does not open: through h5py.
h5_live_attr() {
  python3 - "$1" "$2" 2>/dev/null <<'PY'
import sys
import h5py
with h5py.File(sys.argv[1], "r", swmr=True, locking=False) as f:
    value = f.attrs[sys.argv[2]]
print(value.decode().rstrip("\0") if isinstance(value, bytes) else value)
PY
}

# expect_complete_results FILE RANKS [STEPS]
expect_complete_results() {
  local file=$1 ranks=$2 steps=${3:-$train_steps} status
  [ -f "$file" ] || why "no results file $file" || return 1
  status=$(h5_attr "$file" status)
  [ "$status" = complete ] || why "$file has status '$status', expected complete" || return 1
  [ "$(h5_attr "$file" world_size)" = "$ranks" ] ||
    why "$file has world_size $(h5_attr "$file" world_size), expected $ranks" || return 1
  [ "$(h5_attr "$file" steps_done)" = "$steps" ] ||
    why "$file has steps_done $(h5_attr "$file" steps_done), expected $steps"
}

# expect_same_results A B [tolerant]: the training results agree, exactly, or with "tolerant"
# to a relative 1e-5; the mean KL, whose values lie near zero, to an absolute 1e-5 instead.
expect_same_results() {
  local a=$1 b=$2 tolerant=${3:-} object options
  for object in "${results_compare[@]}"; do
    options=()
    if [ -n "$tolerant" ]; then
      options=(-p 1e-5)
      [ "$object" = /metrics/kl_mean ] && options=(-d 1e-5)
    fi
    h5diff "${options[@]}" "$a" "$b" "$object" "$object" >"$work/h5diff.out" 2>&1 ||
      why "$object differs between $a and $b: $(head -n 5 "$work/h5diff.out")" || return 1
  done
}

test_train_two_tasks_complete_results() {
  local id out=$work/train-2
  [ -f "$train_job" ] || why "no job file $train_job for the train tests" || return 1
  id=$(submit --ntasks=2 "$slurm_dir/train-cpu.sbatch" "$train_job" "$out" -- \
    --set "run.steps=$train_steps") || return 1
  expect_state "$id" COMPLETED || return 1
  expect_complete_results "$(sed -n 's/.*sbatch: results: //p' "$(log_of "$id")")" 2
}

test_train_sweep_results_agree() {
  local ids dir=$work/train-sweep
  [ -f "$train_job" ] || why "no job file $train_job for the train tests" || return 1
  ids=$(sweep_ids --output-dir "$dir" --name demo --set "run.steps=$train_steps" \
    "$train_job" 1 2) || return 1
  read -ra ids <<<"$ids"
  set -- "${ids[@]}"
  expect_state "$1" COMPLETED && expect_state "$2" COMPLETED || return 1
  expect_complete_results "$dir/demo-ws1.h5" 1 || return 1
  expect_complete_results "$dir/demo-ws2.h5" 2 || return 1
  # Sums over a different number of ranks round differently: agreement to a relative 1e-5.
  expect_same_results "$dir/demo-ws1.h5" "$dir/demo-ws2.h5" tolerant
}

test_train_usr1_resume_identical() {
  local ref sig file waited=0
  [ -f "$train_job" ] || why "no job file $train_job for the train tests" || return 1
  ref=$(submit --ntasks=2 "$slurm_dir/train-cpu.sbatch" "$train_job" "$work/train-ref" -- \
    --set "run.steps=$resume_steps") || return 1
  expect_state "$ref" COMPLETED || return 1
  sig=$(submit --ntasks=2 "$slurm_dir/train-cpu.sbatch" "$train_job" "$work/train-usr1" -- \
    --set "run.steps=$resume_steps" --set run.checkpoint_every=0) || return 1
  file=$(basename "$(sed -n 's/.*sbatch: results: //p' "$(log_of "$ref")")")
  # Stop it after its first step and before its last.
  until [ "$(h5_live_attr "$work/train-usr1/$file" steps_done)" -ge 1 ] 2>/dev/null; do
    [ $((waited / 5)) -lt "$job_timeout" ] || why "job $sig wrote no step" || return 1
    sleep 0.2
    waited=$((waited + 1))
  done
  [ "$(h5_live_attr "$work/train-usr1/$file" status)" = running ] ||
    why "job $sig ended before the signal; raise ALIGNPRO_E2E_RESUME_STEPS" || return 1
  scancel --batch --signal=USR1 "$sig"
  expect_state "$sig" COMPLETED hurry || return 1
  [ "$(job_field "$sig" Restarts)" = 1 ] || why "job $sig was not requeued once" || return 1
  expect_in_log "$sig" "requeueing job $sig" || return 1
  expect_complete_results "$work/train-ref/$file" 2 "$resume_steps" || return 1
  expect_complete_results "$work/train-usr1/$file" 2 "$resume_steps" || return 1
  expect_same_results "$work/train-ref/$file" "$work/train-usr1/$file"
}

run_train_test() {
  # CLI11 answers --help for an unknown command with the main help and status 0, so the help
  # must also be the train command's own.
  if "$alignpro" train --help 2>&1 | grep -q "^Usage: .* train"; then
    run_test "$1"
  else
    echo "SKIPPED $1: this alignpro has no train command (see 'alignpro --help')"
    skipped=$((skipped + 1))
  fi
}

# --- run ------------------------------------------------------------------------------------

echo "cluster: $(sed -n 's/^local-cluster: node //p' "$work/start.log")"
run_test test_templates_refuse_outside_slurm
run_test test_version_on_two_tasks
run_test test_version_on_two_tasks_with_mpirun
run_test test_gpu_templates_launch_without_gpus
run_test test_check_runs_on_every_rank
run_test test_broken_job_fails_fast
run_test test_sweep_strong_one_and_two_ranks
run_test test_sweep_weak_grows_the_batch
run_test test_usr1_checkpoints_requeues_and_resumes
run_test test_scancel_is_not_requeued
run_test test_preemption_requeues_and_resumes
run_test test_time_limit_warning_requeues
run_train_test test_train_two_tasks_complete_results
run_train_test test_train_sweep_results_agree
run_train_test test_train_usr1_resume_identical

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
