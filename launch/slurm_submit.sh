#!/usr/bin/env bash
# Submits launch/slurm_gpu.sbatch with a consistent nodes x GPUs x tasks layout, after checking
# its arguments. Run with -h for usage.
set -euo pipefail

LAUNCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(dirname "${LAUNCH_DIR}")"
# shellcheck source=launch/common.sh
source "${LAUNCH_DIR}/common.sh"

usage() {
  cat <<'EOF'
Usage: launch/slurm_submit.sh [flags] -- --config=PATH --workdir=DIR [SBATCH_SCRIPT_FLAGS...]

Submits launch/slurm_gpu.sbatch (everything after -- is its arguments; see
launch/slurm_gpu.sbatch -h) to run train.py on NODES x GPUS_PER_NODE GPUs. The arguments are
checked before the job is queued, and the srun command the job will run is printed.

Flags:
  --nodes=N            nodes (default: 1).
  --gpus_per_node=G    GPUs per node (default: 8).
  --tasks=LAYOUT       per_gpu: one train.py process per GPU (default);
                       per_node: one process per node driving all its GPUs.
  --cpus_per_gpu=C     CPU cores per GPU, for input pipelines (default: 8).
  --partition=P        SLURM partition (default: the cluster's default).
  --account=A          SLURM account (default: the user's default).
  --time=T             wall-clock limit, e.g. 24:00:00 (default: the script's 24 h).
  --dry_run            Print the sbatch command instead of submitting it.
  -h, --help           Show this help.

Example (2 nodes x 8 GPUs, one process per GPU = 16 processes):
  launch/slurm_submit.sh --nodes=2 --gpus_per_node=8 -- \
      --config=experiments/default.py --workdir=/shared/runs/default \
      -- --config.train.batch_size=256
EOF
}

NODES=1 GPUS_PER_NODE=8 TASKS=per_gpu CPUS_PER_GPU=8 PARTITION='' ACCOUNT='' TIME=''
SCRIPT_ARGS=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --nodes=*) NODES="$(flag_value "$1")" ;;
    --gpus_per_node=*) GPUS_PER_NODE="$(flag_value "$1")" ;;
    --tasks=*) TASKS="$(flag_value "$1")" ;;
    --cpus_per_gpu=*) CPUS_PER_GPU="$(flag_value "$1")" ;;
    --partition=*) PARTITION="$(flag_value "$1")" ;;
    --account=*) ACCOUNT="$(flag_value "$1")" ;;
    --time=*) TIME="$(flag_value "$1")" ;;
    --dry_run) DRY_RUN=true ;;
    --) shift; SCRIPT_ARGS=("$@"); break ;;
    *) die "unknown flag '$1' (arguments for slurm_gpu.sbatch go after --; -h for help)" ;;
  esac
  shift
done
for count in NODES GPUS_PER_NODE CPUS_PER_GPU; do
  [[ "${!count}" =~ ^[1-9][0-9]*$ ]] || die "--${count,,} must be a positive integer, got '${!count}'"
done
case "${TASKS}" in
  per_gpu) TASKS_PER_NODE="${GPUS_PER_NODE}" GPUS_PER_TASK=1 ;;
  per_node) TASKS_PER_NODE=1 GPUS_PER_TASK="${GPUS_PER_NODE}" ;;
  *) die "--tasks must be per_gpu or per_node, got '${TASKS}'" ;;
esac

# The job's own argument check, run here so that mistakes surface before the job is queued.
cd "${REPO_DIR}"
JOB_COMMAND="$(SLURM_NTASKS_PER_NODE="${TASKS_PER_NODE}" SLURM_GPUS_ON_NODE="${GPUS_PER_NODE}" \
  bash launch/slurm_gpu.sbatch --dry_run "${SCRIPT_ARGS[@]}")"
echo "the job will run: ${JOB_COMMAND}" >&2

SBATCH=(sbatch --chdir="${REPO_DIR}" --nodes="${NODES}" --gpus-per-node="${GPUS_PER_NODE}"
  --ntasks-per-node="${TASKS_PER_NODE}" --cpus-per-task="$((CPUS_PER_GPU * GPUS_PER_TASK))")
[[ -z "${PARTITION}" ]] || SBATCH+=(--partition="${PARTITION}")
[[ -z "${ACCOUNT}" ]] || SBATCH+=(--account="${ACCOUNT}")
[[ -z "${TIME}" ]] || SBATCH+=(--time="${TIME}")
execute "${SBATCH[@]}" launch/slurm_gpu.sbatch "${SCRIPT_ARGS[@]}"
