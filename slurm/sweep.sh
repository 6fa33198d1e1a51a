#!/usr/bin/env bash
# A scaling sweep: submits the same job once per rank count, each run writing its own results
# file DIR/NAME-wsN.h5 (N: the world size), so that analysis/ can read the set as one study.
#
#   slurm/sweep.sh [options] JOB.toml N [N...] [-- sbatch options for every job]
#
#   --weak               weak scaling: optim.batch_prompts grows with the ranks (B*N, B the
#                        job's own batch_prompts); the default is strong scaling (same B)
#   --batch B            B for --weak instead of the job's optim.batch_prompts
#   --template T         cpu (default), gpu, multinode, or the path of an sbatch script
#   --ranks-per-node P   ranks per node: N ranks ask for ceil(N/P) nodes (GPU templates)
#   --output-dir DIR     folder of the results files and job logs; default runs/sweep-NAME
#   --name NAME          stem of the file names; default the job's run.name (NAME-weak for --weak)
#   --set KEY=VALUE      a job override for every run (repeatable)
#   --dry-run            validate and print the sbatch commands; submit nothing
#
# Example: slurm/sweep.sh jobs/templates/pool-system-prompts.toml 1 2 4 8 -- --time=2:00:00
# Every count is validated (alignpro check --ranks N) before anything is submitted. The job
# logs go beside the results: DIR/NAME-wsN-JOBID.out.
set -euo pipefail

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd -- "$here/.." && pwd)

die() {
  echo "sweep: error: $*" >&2
  exit 2
}
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }

weak=0
batch=""
template=cpu
per_node=""
output_dir=""
name=""
dry_run=0
sets=()
positional=()
sbatch_options=()
while [ $# -gt 0 ]; do
  case "$1" in
    --weak) weak=1; shift ;;
    --batch | --template | --ranks-per-node | --output-dir | --name | --set)
      [ $# -ge 2 ] || die "$1 needs a value"
      case "$1" in
        --batch) batch=$2 ;;
        --template) template=$2 ;;
        --ranks-per-node) per_node=$2 ;;
        --output-dir) output_dir=$2 ;;
        --name) name=$2 ;;
        --set) sets+=(--set "$2") ;;
      esac
      shift 2
      ;;
    --dry-run) dry_run=1; shift ;;
    -h | --help) usage; exit 0 ;;
    --) shift; sbatch_options=("$@"); break ;;
    -*) die "unknown option '$1' (see --help)" ;;
    *) positional+=("$1"); shift ;;
  esac
done
[ ${#positional[@]} -ge 2 ] || {
  usage >&2
  die "give a job file and at least one rank count, e.g.: slurm/sweep.sh JOB.toml 1 2 4"
}
job=${positional[0]}
counts=("${positional[@]:1}")
[ -f "$job" ] || die "job file '$job' not found"
job=$(cd -- "$(dirname -- "$job")" && pwd)/$(basename -- "$job")

declare -A seen=()
for n in "${counts[@]}"; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "rank count: found '$n'; allowed: a positive integer"
  [ -z "${seen[$n]:-}" ] || die "rank count $n is given twice; each count is one results file"
  seen[$n]=1
done
if [ -n "$batch" ] && ! [[ "$batch" =~ ^[1-9][0-9]*$ ]]; then
  die "--batch: found '$batch'; allowed: a positive integer"
fi
if [ -n "$per_node" ] && ! [[ "$per_node" =~ ^[1-9][0-9]*$ ]]; then
  die "--ranks-per-node: found '$per_node'; allowed: a positive integer"
fi
case "$template" in
  cpu | gpu | multinode) script=$here/train-$template.sbatch ;;
  *) script=$template ;;
esac
[ -f "$script" ] || die "--template: '$template' is not cpu, gpu, multinode or an sbatch script"
script=$(cd -- "$(dirname -- "$script")" && pwd)/$(basename -- "$script")

# The same executable the templates would use, to read and validate the job here, at submit time.
if [ -n "${ALIGNPRO_BIN:-}" ]; then
  bin=$ALIGNPRO_BIN
elif command -v alignpro >/dev/null 2>&1; then
  bin=$(command -v alignpro)
else
  bin=$repo/build/src/alignpro
fi
[ -x "$bin" ] || die "alignpro executable '$bin' not found; set ALIGNPRO_BIN or build alignpro"

# KEY's value in [SECTION] of a resolved configuration (alignpro check's output).
toml_value() {
  awk -v section="[$1]" -v key="$2" '
    /^\[/ { in_section = ($0 == section) }
    in_section && $1 == key && $2 == "=" {
      value = substr($0, index($0, "=") + 1)
      sub(/^ *"?/, "", value); sub(/"? *$/, "", value)
      print value; exit
    }'
}

resolved=$("$bin" check "$job" "${sets[@]}" 2>&1) || {
  echo "$resolved" >&2
  die "the job does not validate (alignpro check, above); nothing was submitted"
}
if [ -z "$name" ]; then
  name=$(toml_value run name <<<"$resolved")
  [ "$weak" = 1 ] && name=$name-weak
fi
[[ "$name" =~ ^[A-Za-z0-9._-]+$ ]] ||
  die "--name: found '$name'; allowed: letters, digits, '.', '_' and '-' (it names files)"
if [ "$weak" = 1 ] && [ -z "$batch" ]; then
  batch=$(toml_value optim batch_prompts <<<"$resolved")
  [[ "$batch" =~ ^[0-9]+$ ]] || die "cannot read optim.batch_prompts of $job; give --batch B"
fi
[ -n "$output_dir" ] || output_dir=$PWD/runs/sweep-$name
[[ "$output_dir" == /* ]] || output_dir=$PWD/$output_dir
if [ "$dry_run" = 0 ]; then
  mkdir -p -- "$output_dir" || die "cannot create the output folder '$output_dir'"
  output_dir=$(cd -- "$output_dir" && pwd)
fi

# Validate every count first, so that a sweep is submitted whole or not at all.
declare -A commands=()
for n in "${counts[@]}"; do
  file=$output_dir/$name-ws$n.h5
  run_sets=("${sets[@]}" --set "run.output=$file")
  [ "$weak" = 1 ] && run_sets+=(--set "optim.batch_prompts=$((batch * n))")
  if ! out=$("$bin" check "$job" --ranks "$n" "${run_sets[@]}" 2>&1); then
    echo "$out" >&2
    die "the job does not validate for $n ranks (above); nothing was submitted"
  fi
  placement=(--ntasks="$n")
  if [ -n "$per_node" ]; then
    placement+=(--nodes=$(((n + per_node - 1) / per_node))
      --ntasks-per-node=$((n < per_node ? n : per_node)))
  fi
  cmd=(sbatch --parsable --job-name="$name-ws$n" --output="$output_dir/%x-%j.out"
    "${placement[@]}" "${sbatch_options[@]}" "$script" "$job" -- "${run_sets[@]}")
  commands[$n]=$(printf '%q ' "${cmd[@]}")
  [ -e "$file" ] && echo "sweep: note: $file exists; alignpro resumes it if it is unfinished"
done

ids=()
for n in "${counts[@]}"; do
  file=$output_dir/$name-ws$n.h5
  ranks="$n rank$([ "$n" = 1 ] || echo s)"
  if [ "$dry_run" = 1 ]; then
    echo "sweep: would submit ($ranks -> $file): ${commands[$n]}"
    continue
  fi
  id=$(eval "${commands[$n]}") ||
    die "sbatch failed for $n ranks; jobs already submitted: ${ids[*]:-none}"
  id=${id%%;*}
  ids+=("$id")
  echo "sweep: job $id: $ranks$([ "$weak" = 1 ] && echo ", batch_prompts $((batch * n))")" \
    "-> $file (log $output_dir/$name-ws$n-$id.out)"
done
[ "$dry_run" = 1 ] && exit 0
ids_csv=$(IFS=,; echo "${ids[*]}")
echo "sweep: watch with: squeue -j $ids_csv"
echo "sweep: results: $output_dir/$name-ws*.h5 (one file per world size)"
echo "sweep: job ids: ${ids[*]}"
