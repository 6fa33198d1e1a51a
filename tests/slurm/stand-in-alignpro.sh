#!/usr/bin/env bash
# A stand-in for the alignpro executable that keeps only alignpro's contract with the sbatch
# templates: `check` validates (always) and prints a resolved [run] section; `train` waits for
# SIGUSR1 or SIGTERM, then "writes a checkpoint" and exits 3, or, started again after that,
# "resumes" and exits 0. It lets the tests drive the templates' signal forwarding and requeueing
# through a real SLURM without training anything.
#
# Every rank keeps its own marker files beside run.output: OUTPUT.rankR.waiting while it waits
# for a signal, OUTPUT.rankR.checkpoint once it has "checkpointed".
set -u

command=${1:-}
shift || true
output=""
for arg in "$@"; do
  case "$arg" in
    run.output=*) output=${arg#run.output=} ;;
  esac
done
rank=${SLURM_PROCID:-${OMPI_COMM_WORLD_RANK:-${PMIX_RANK:-0}}}

case "$command" in
  check)
    printf '# stand-in: valid\n[run]\nname = "stand-in"\noutput = "%s"\n' "${output:-stand-in.h5}"
    exit 0
    ;;
  train) ;;
  *)
    echo "stand-in: unknown command '$command'" >&2
    exit 2
    ;;
esac
[ -n "$output" ] || {
  echo "stand-in: train needs --set run.output=PATH" >&2
  exit 2
}

marker=$output.rank$rank
if [ -e "$marker.checkpoint" ]; then
  echo "stand-in: rank $rank resumed from its checkpoint"
  exit 0
fi

# shellcheck disable=SC2317  # called by the traps below
checkpoint() {
  echo "stand-in: rank $rank got SIG$1, wrote its checkpoint"
  mv "$marker.waiting" "$marker.checkpoint"
  exit 3
}
trap 'checkpoint USR1' USR1
trap 'checkpoint TERM' TERM
echo "stand-in: rank $rank waiting for a signal"
: >"$marker.waiting"
# Bounded, so that a lost signal fails the test instead of hanging it.
for _ in $(seq 1 600); do
  sleep 1 &
  wait $!
done
echo "stand-in: rank $rank got no signal in 600 s" >&2
exit 1
