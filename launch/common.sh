# Helpers shared by the launch scripts (sourced, never run on its own).
#
# Every script sets DRY_RUN=true for --dry_run; `execute` then prints each command as one
# shell-quoted line on stdout (copy-paste runnable) instead of running it.
# shellcheck shell=bash

DRY_RUN=false
# train.py's exit status after a preemption saved a checkpoint (PREEMPTED_EXIT_STATUS of
# wavenet_jax/run_control.py): the run is unfinished and resumes when started again.
export PREEMPTED_EXIT_STATUS=75

# Prints "$@" as one shell command line: plain words as they are, others single-quoted.
quote_command() {
  local word line=''
  for word in "$@"; do
    if [[ "${word}" =~ ^[A-Za-z0-9_./:=@,+%-]+$ ]]; then
      line+="${word} "
    else
      line+="${word@Q} "
    fi
  done
  printf '%s\n' "${line% }"
}

# Runs "$@", or prints it under --dry_run. Echoes the command to stderr before running it.
execute() {
  if [[ "${DRY_RUN}" == true ]]; then
    quote_command "$@"
  else
    printf '+ %s\n' "$(quote_command "$@")" >&2
    "$@"
  fi
}

# Prints a one-line error naming the script and exits with status 2 (a usage error).
die() {
  printf '%s: %s\n' "$(basename "$0")" "$*" >&2
  exit 2
}

# Echoes the value of a --key=value argument; dies if it is empty.
flag_value() {
  local arg="$1"
  local value="${arg#*=}"
  [[ "${arg}" == *=* && -n "${value}" ]] || die "${arg%%=*} needs a value: ${arg%%=*}=VALUE"
  printf '%s' "${value}"
}
