#!/usr/bin/env bash
# The package with no extras on Python 3.12, in a virtualenv without TensorFlow
# (.venv-notf): the fast test tier with DeprecationWarnings (JAX, flax, optax, orbax and the
# rest) as errors, then experiments/tiny.py trained for a few steps on the bundled corpus,
# resumed, evaluated and sampled, each checked not to import TensorFlow.
set -euo pipefail
cd "$(dirname "$0")/.."

python312() {
  # pyenv's shim for python3.12 answers only when 3.12 is a selected version: ask pyenv too.
  if python3.12 -c '' 2>/dev/null; then
    command -v python3.12
  elif command -v pyenv >/dev/null && pyenv prefix 3.12 >/dev/null 2>&1; then
    echo "$(pyenv prefix 3.12)/bin/python3.12"
  else
    echo "tests/run_without_tensorflow.sh: error: no Python 3.12 found" >&2
    return 1
  fi
}

PYTHON=${PYTHON312:-$(python312)}
VENV=.venv-notf
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -r requirements-test.txt
"$VENV/bin/python" -m pip install -q --no-deps -e .
"$VENV/bin/python" - <<'PY'
import importlib.util, sys
assert sys.version_info[:2] == (3, 12), sys.version
assert importlib.util.find_spec('tensorflow') is None, 'TensorFlow is installed in .venv-notf'
PY

# Deprecations raised by (or on behalf of) our calls into these libraries fail the tier.
"$VENV/bin/python" -m pytest -q tests -m "not slow" -p no:cacheprovider \
  -W error::DeprecationWarning

# In the runs too, but for ml_collections' config-file loader: it calls importlib's
# load_module(), which Python 3.12 itself deprecates (no API of the libraries we call).
export PYTHONWARNINGS='error::DeprecationWarning,ignore:the load_module() method is deprecated:DeprecationWarning'
RUN=$(mktemp -d)
trap 'rm -rf "$RUN"' EXIT
guarded() {  # guarded NAME SCRIPT ARGS...: runs SCRIPT, then fails if it imported TensorFlow.
  local name=$1
  shift
  TENSORFLOW_GUARD_REPORT="$RUN/$name.json" "$VENV/bin/python" tests/tensorflow_guard.py \
    --installed "$@"
  if [ "$(cat "$RUN/$name.json")" != "[]" ]; then
    echo "tests/run_without_tensorflow.sh: error: $name imported $(cat "$RUN/$name.json")" >&2
    exit 1
  fi
}
TINY=(--config=experiments/tiny.py --workdir="$RUN/tiny" --config.data.data_dir="$RUN/tfds"
      --config.train.log_every_steps=2 --config.eval.every_steps=4
      --config.sample.every_steps=4 --config.checkpoint.every_steps=4)
guarded train train.py "${TINY[@]}" --config.train.num_steps=4
guarded resume train.py "${TINY[@]}" --config.train.num_steps=8
test -d "$RUN/tiny/checkpoints/8" && test -f "$RUN/tiny/samples/step_00000008.wav"
guarded evaluate evaluate.py --workdir="$RUN/tiny" --wav_dir=wavenet_jax/data/speech/slt \
  | tail -1 | tee "$RUN/score.json"
"$VENV/bin/python" -c "import json, math, sys; score = json.load(open(sys.argv[1])); \
assert math.isfinite(score['bits_per_sample']) and score['num_files'] > 0, score" "$RUN/score.json"
guarded sample sample.py --workdir="$RUN/tiny" --output="$RUN/sample.wav" --seconds=0.25
test -s "$RUN/sample.wav" && test -s "$RUN/sample.png"
echo "Without TensorFlow (Python 3.12): trained, resumed, evaluated and sampled; TensorFlow never imported."
