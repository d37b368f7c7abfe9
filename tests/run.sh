#!/usr/bin/env bash
# Sets up a virtualenv (.venv: Python 3.11, requirements-test.txt and the TensorFlow extra) and
# runs the test suite; arguments go to pytest (e.g. -m "not slow": the one-minute tier; a test
# file or node id: only that).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -r requirements-test.txt -r requirements-tensorflow.txt
.venv/bin/python -m pip install -q --no-deps -e .
exec .venv/bin/python -m pytest -q "$@"  # pytest.ini: testpaths = tests.
