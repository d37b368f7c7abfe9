#!/usr/bin/env bash
# Cloud TPU VM launcher: create a TPU VM (or pod slice), set up every worker, run train.py on
# all workers, stream its logs, delete it, and relaunch preempted spot TPUs. Run with -h for usage.
set -euo pipefail

LAUNCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(dirname "${LAUNCH_DIR}")"
# shellcheck source=launch/common.sh
source "${LAUNCH_DIR}/common.sh"

# Layout on every worker, relative to the ssh user's home directory.
REMOTE_REPO=wavenet-jax
REMOTE_TARBALL=wavenet-jax.tar.gz
REMOTE_VENV=wavenet-venv
REMOTE_LOG=wavenet-train.log
REMOTE_PID=wavenet-train.pid
REMOTE_EXIT=wavenet-train.exit
# TPU runtimes ship Ubuntu 22.04 (Python 3.10); uv installs the Python this package needs.
UV_VERSION=0.13.9
PYTHON_VERSION=3.11

usage() {
  cat <<EOF
Usage: launch/tpu_vm.sh COMMAND --name=NAME --zone=ZONE [flags] [-- TRAIN_FLAGS...]

Cloud TPU VMs for train.py, through gcloud. Every worker of a pod slice runs the same
train.py; JAX finds the other workers itself (jax.distributed.initialize()).

Commands:
  create    Create the TPU VM (waits until it is ready). With --queued, through a queued
            resource (waits until it is ACTIVE).
  setup     On every worker (--worker=all): copy the code (this checkout's committed HEAD,
            or git clone --repo_url), make a Python ${PYTHON_VERSION} venv with uv, and install
            requirements-gcs.txt (requirements.txt and the gs:// file systems), jax[tpu] at
            the jax version pinned in requirements.txt, and the package (-e .).
  run       Start train.py on all workers in the background (it survives a dropped ssh
            connection), then stream worker --worker's log until training ends; exits with
            train.py's exit status.
  logs      Stream the log of the current or last run (from its start) until training ends.
  delete    Delete the TPU VM (with --queued: the queued resource and its TPU VM).
  relaunch  Run to completion through preemptions: (re)create and set up the TPU whenever it
            is missing or preempted, then run; train.py resumes from the latest checkpoint
            in --workdir. Stops when training succeeds, when train.py fails on a healthy TPU,
            or after --max_attempts attempts.

Flags:
  --name=NAME               TPU VM name (also the queued resource id with --queued). Required.
  --zone=ZONE               e.g. us-central2-b (v4), us-west4-a (v5e). Required.
  --project=PROJECT         GCP project (default: gcloud's configured project).
  --accelerator_type=TYPE   e.g. v4-8, v4-32, v5litepod-8, v5litepod-256, v5p-8, v6e-8
                            (default: v4-8).
  --runtime_version=V       TPU software version (default from the accelerator type:
                            v2/v3/v4 tpu-ubuntu2204-base, v5litepod v2-alpha-tpuv5-lite,
                            v5p v2-alpha-tpuv5, v6e v2-alpha-tpuv6e).
  --spot                    Spot capacity (cheaper, can be preempted: use relaunch).
  --queued                  Create and delete through a queued resource.
  --repo_url=URL            setup: git clone this URL on the workers instead of copying
                            this checkout (which copies committed files only).
  --branch=REF              setup with --repo_url: the branch or tag to clone (default: main).
  --config=PATH             run: experiments config (default: experiments/default.py).
  --workdir=gs://...        run: checkpoints and summaries; must be a gs:// URL, which every
                            worker shares and which outlives the TPU. Required for run.
  --data_dir=DIR            run: TFDS data_dir (--config.data.data_dir): a folder on each
                            worker's local disk (prepared datasets are ArrayRecord files,
                            which are local only); default ~/tensorflow_datasets.
  --worker=W                run/logs: the worker whose log is streamed: a number or all
                            (default: 0).
  --max_attempts=N          relaunch: at most this many attempts (default: 100).
  --retry_wait_seconds=S    relaunch: pause before each new attempt (default: 60).
  --dry_run                 Print the commands (one per line) instead of running them;
                            relaunch prints one attempt on a TPU that does not exist yet.
  -h, --help                Show this help.

Everything after -- goes to train.py unchanged (e.g. --config.train.batch_size=256).

Example (a spot v4-8 that survives preemptions):
  launch/tpu_vm.sh relaunch --name=wavenet --zone=us-central2-b --accelerator_type=v4-8 \\
      --spot --config=experiments/default.py --workdir=gs://BUCKET/runs/default
EOF
}

default_runtime_version() {
  case "$1" in
    v2-* | v3-* | v4-*) printf 'tpu-ubuntu2204-base' ;;
    v5litepod-*) printf 'v2-alpha-tpuv5-lite' ;;
    v5p-*) printf 'v2-alpha-tpuv5' ;;
    v6e-*) printf 'v2-alpha-tpuv6e' ;;
    *) die "no default --runtime_version for --accelerator_type=$1; pass --runtime_version" ;;
  esac
}

# ---------------------------------------------------------------------------------------------
# Arguments.

[[ $# -gt 0 ]] || { usage >&2; exit 2; }
case "$1" in
  -h | --help) usage; exit 0 ;;
  create | setup | run | logs | delete | relaunch) COMMAND="$1"; shift ;;
  *) die "unknown command '$1' (expected create, setup, run, logs, delete or relaunch; -h for help)" ;;
esac

NAME='' ZONE='' PROJECT='' ACCELERATOR_TYPE=v4-8 RUNTIME_VERSION='' SPOT=false QUEUED=false
REPO_URL='' BRANCH=main CONFIG=experiments/default.py WORKDIR='' DATA_DIR='' WORKER=0
MAX_ATTEMPTS=100 RETRY_WAIT_SECONDS=60
TRAIN_FLAGS=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --name=*) NAME="$(flag_value "$1")" ;;
    --zone=*) ZONE="$(flag_value "$1")" ;;
    --project=*) PROJECT="$(flag_value "$1")" ;;
    --accelerator_type=*) ACCELERATOR_TYPE="$(flag_value "$1")" ;;
    --runtime_version=*) RUNTIME_VERSION="$(flag_value "$1")" ;;
    --spot) SPOT=true ;;
    --queued) QUEUED=true ;;
    --repo_url=*) REPO_URL="$(flag_value "$1")" ;;
    --branch=*) BRANCH="$(flag_value "$1")" ;;
    --config=*) CONFIG="$(flag_value "$1")" ;;
    --workdir=*) WORKDIR="$(flag_value "$1")" ;;
    --data_dir=*) DATA_DIR="$(flag_value "$1")" ;;
    --worker=*) WORKER="$(flag_value "$1")" ;;
    --max_attempts=*) MAX_ATTEMPTS="$(flag_value "$1")" ;;
    --retry_wait_seconds=*) RETRY_WAIT_SECONDS="$(flag_value "$1")" ;;
    --dry_run) DRY_RUN=true ;;
    --) shift; TRAIN_FLAGS=("$@"); break ;;
    *) die "unknown flag '$1' (flags for train.py go after --; -h for help)" ;;
  esac
  shift
done

[[ -n "${NAME}" ]] || die "--name is required"
[[ -n "${ZONE}" ]] || die "--zone is required"
[[ "${WORKER}" == all || "${WORKER}" =~ ^[0-9]+$ ]] || die "--worker must be a number or all, got '${WORKER}'"
[[ "${MAX_ATTEMPTS}" =~ ^[1-9][0-9]*$ ]] || die "--max_attempts must be a positive integer, got '${MAX_ATTEMPTS}'"
[[ "${RETRY_WAIT_SECONDS}" =~ ^[0-9]+$ ]] || die "--retry_wait_seconds must be a whole number, got '${RETRY_WAIT_SECONDS}'"
[[ -n "${RUNTIME_VERSION}" ]] || RUNTIME_VERSION="$(default_runtime_version "${ACCELERATOR_TYPE}")"
if [[ "${COMMAND}" == run || "${COMMAND}" == relaunch ]]; then
  [[ -n "${WORKDIR}" ]] || die "--workdir is required for ${COMMAND} (a gs:// URL)"
  [[ "${WORKDIR}" == gs://* ]] || die "--workdir must be a gs:// URL that all workers share, got '${WORKDIR}'"
  [[ -f "${REPO_DIR}/${CONFIG}" ]] || die "--config=${CONFIG}: no such file in ${REPO_DIR}"
  [[ "${DATA_DIR}" != *://* ]] || die "--data_dir must be a folder on each worker's local disk (ArrayRecord reads local files only), got '${DATA_DIR}'"
elif [[ ${#TRAIN_FLAGS[@]} -gt 0 ]]; then
  die "flags after -- are for train.py; only run and relaunch take them"
fi

LOCATION=(--zone="${ZONE}")
[[ -z "${PROJECT}" ]] || LOCATION+=(--project="${PROJECT}")

# ---------------------------------------------------------------------------------------------
# TPU lifecycle.

# Sets TPU_STATE to the TPU's state (READY, PREEMPTED, ... or, with --queued, the queued
# resource's ACTIVE, SUSPENDED, ...), or '' when it does not exist. Under --dry_run, prints the
# query and sets ''.
read_tpu_state() {
  local query
  if [[ "${QUEUED}" == true ]]; then
    query=(gcloud compute tpus queued-resources describe "${NAME}" "${LOCATION[@]}" '--format=value(state.state)')
  else
    query=(gcloud compute tpus tpu-vm describe "${NAME}" "${LOCATION[@]}" '--format=value(state)')
  fi
  TPU_STATE=''
  if [[ "${DRY_RUN}" == true ]]; then
    quote_command "${query[@]}"
    return
  fi
  local stderr_file
  stderr_file="$(mktemp)"
  if ! TPU_STATE="$("${query[@]}" 2>"${stderr_file}")"; then
    TPU_STATE=''
    if ! grep -qi 'not.found' "${stderr_file}"; then
      cat "${stderr_file}" >&2
      rm -f "${stderr_file}"
      die "could not read the state of TPU '${NAME}' (gcloud error above)"
    fi
  fi
  rm -f "${stderr_file}"
}

tpu_is_ready() {
  [[ "${TPU_STATE}" == READY || "${TPU_STATE}" == ACTIVE ]]
}

create_tpu() {
  local spot=()
  [[ "${SPOT}" == false ]] || spot=(--spot)
  if [[ "${QUEUED}" == false ]]; then
    execute gcloud compute tpus tpu-vm create "${NAME}" "${LOCATION[@]}" \
      --accelerator-type="${ACCELERATOR_TYPE}" --version="${RUNTIME_VERSION}" "${spot[@]}"
    return
  fi
  execute gcloud compute tpus queued-resources create "${NAME}" "${LOCATION[@]}" \
    --node-id="${NAME}" --accelerator-type="${ACCELERATOR_TYPE}" \
    --runtime-version="${RUNTIME_VERSION}" "${spot[@]}"
  while true; do
    read_tpu_state
    if [[ "${DRY_RUN}" == true || "${TPU_STATE}" == ACTIVE ]]; then
      return
    fi
    case "${TPU_STATE}" in
      FAILED | SUSPENDED) die "queued resource '${NAME}' is ${TPU_STATE}; delete it and retry" ;;
    esac
    echo "queued resource '${NAME}': ${TPU_STATE:-not visible yet}; waiting" >&2
    sleep 30
  done
}

delete_tpu() {
  if [[ "${QUEUED}" == true ]]; then
    execute gcloud compute tpus queued-resources delete "${NAME}" "${LOCATION[@]}" --force --quiet
  else
    execute gcloud compute tpus tpu-vm delete "${NAME}" "${LOCATION[@]}" --quiet
  fi
}

# Runs a shell command line on the TPU's workers ($1: a worker number or all).
ssh_workers() {
  execute gcloud compute tpus tpu-vm ssh "${NAME}" "${LOCATION[@]}" --worker="$1" --command="$2"
}

# ---------------------------------------------------------------------------------------------
# Setup, run, logs.

setup_workers() {
  local fetch
  if [[ -n "${REPO_URL}" ]]; then
    fetch="rm -rf ${REMOTE_REPO} && git clone --depth=1 --branch=$(quote_command "${BRANCH}") $(quote_command "${REPO_URL}") ${REMOTE_REPO}"
  else
    if [[ -n "$(git -C "${REPO_DIR}" status --porcelain --untracked-files=no)" ]]; then
      echo "note: uncommitted changes are not copied to the TPU (setup copies HEAD)" >&2
    fi
    local tarball="${TMPDIR:-/tmp}/${NAME}-${REMOTE_TARBALL}"
    execute git -C "${REPO_DIR}" archive --format=tar.gz --output="${tarball}" HEAD
    execute gcloud compute tpus tpu-vm scp "${tarball}" "${NAME}:${REMOTE_TARBALL}" \
      "${LOCATION[@]}" --worker=all
    fetch="rm -rf ${REMOTE_REPO} && mkdir ${REMOTE_REPO} && tar -xzf ${REMOTE_TARBALL} -C ${REMOTE_REPO}"
  fi
  local jax_version
  jax_version="$(sed -n 's/^jax==//p' "${REPO_DIR}/requirements.txt")"
  [[ -n "${jax_version}" ]] || die "requirements.txt pins no jax==VERSION"
  local uv=".local/bin/uv" python="${REMOTE_VENV}/bin/python"
  ssh_workers all "set -euo pipefail; ${fetch}; \
python3 -m pip install --user --quiet uv==${UV_VERSION}; \
${uv} venv --allow-existing --python=${PYTHON_VERSION} ${REMOTE_VENV}; \
${uv} pip install --python=${python} -r ${REMOTE_REPO}/requirements-gcs.txt 'jax[tpu]==${jax_version}'; \
${uv} pip install --python=${python} --no-deps -e ${REMOTE_REPO}; \
${python} -c 'import jax; jax.distributed.initialize(); \
print(f\"worker {jax.process_index()}: {jax.local_device_count()} of {jax.device_count()} TPU devices\")'"
}

start_training() {
  local train_args=(--config="${CONFIG}" --workdir="${WORKDIR}")
  [[ -z "${DATA_DIR}" ]] || train_args+=(--config.data.data_dir="${DATA_DIR}")
  train_args+=("${TRAIN_FLAGS[@]}")
  local train
  train="cd ${REMOTE_REPO} && ../${REMOTE_VENV}/bin/python train.py $(quote_command "${train_args[@]}"); echo \$? > ~/${REMOTE_EXIT}"
  ssh_workers all "set -eu; \
if [ -f ${REMOTE_PID} ] && kill -0 \"\$(cat ${REMOTE_PID})\" 2>/dev/null; then \
echo \"train.py is already running (pid \$(cat ${REMOTE_PID})); see: launch/tpu_vm.sh logs\" >&2; exit 1; fi; \
rm -f ${REMOTE_EXIT}; \
nohup bash -c ${train@Q} > ${REMOTE_LOG} 2>&1 < /dev/null & echo \$! > ${REMOTE_PID}"
}

# Streams the log until train.py ends; the ssh command exits with train.py's exit status.
stream_logs() {
  ssh_workers "${WORKER}" "[ -f ${REMOTE_PID} ] || { echo 'no training run was started on this worker' >&2; exit 1; }; \
tail --pid=\"\$(cat ${REMOTE_PID})\" -n +1 -F ${REMOTE_LOG}; \
[ -f ${REMOTE_EXIT} ] || { echo 'train.py ended without an exit status (killed?)' >&2; exit 1; }; \
exit \"\$(cat ${REMOTE_EXIT})\""
}

# ---------------------------------------------------------------------------------------------
# Relaunch loop.

relaunch() {
  local attempt status
  for ((attempt = 1; attempt <= MAX_ATTEMPTS; attempt++)); do
    echo "relaunch: attempt ${attempt} of ${MAX_ATTEMPTS}" >&2
    read_tpu_state
    if ! tpu_is_ready; then
      [[ -z "${TPU_STATE}" ]] || delete_tpu
      create_tpu
      setup_workers
    elif ((attempt == 1)); then
      setup_workers
    fi
    start_training || true  # Fails when a run is already going: then follow that one.
    status=0
    stream_logs || status=$?
    if [[ "${DRY_RUN}" == true || "${status}" == 0 ]]; then
      return 0
    fi
    if [[ "${status}" == "${PREEMPTED_EXIT_STATUS}" ]]; then
      echo "relaunch: train.py saved a checkpoint and stopped early (exit status ${status}: preempted); resuming" >&2
      continue
    fi
    read_tpu_state
    if tpu_is_ready && [[ "${status}" != 255 ]]; then
      die "train.py failed with exit status ${status} on a healthy TPU; not relaunching"
    fi
    echo "relaunch: TPU state '${TPU_STATE:-deleted}', exit status ${status}; retrying in ${RETRY_WAIT_SECONDS} s" >&2
    sleep "${RETRY_WAIT_SECONDS}"
  done
  die "gave up after ${MAX_ATTEMPTS} attempts"
}

case "${COMMAND}" in
  create) create_tpu ;;
  setup) setup_workers ;;
  run) start_training; stream_logs ;;
  logs) stream_logs ;;
  delete) delete_tpu ;;
  relaunch) relaunch ;;
esac
