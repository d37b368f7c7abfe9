"""Shared helpers of the trainer tests: a minute-sized config, train.py commands, parameters."""
import os
import subprocess
import sys
import tempfile
from typing import Any, Mapping

import ml_collections
import numpy as np

from experiments import tiny

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Compiled programs are shared by the tests of a session (and the next sessions) and their
# subprocesses through JAX's persistent compilation cache (set up in conftest.py): compiling,
# not running, dominates these tiny models.
COMPILATION_CACHE = os.path.join(tempfile.gettempdir(), 'wavenet_jax_test_compilation_cache')

# experiments/tiny.py shrunk to seconds per run: 4 layers (receptive field 16), 256-sample crops.
OVERRIDES = {
    'model.num_layers': 4,
    'model.num_stacks': 1,
    'model.residual_channels': 8,
    'model.gate_channels': 16,
    'model.skip_channels': 16,
    'model.upsample_scales': (16, 16),
    'data.segment_length': 240,
    'data.mel.n_mels': 8,
    'data.read_threads': 1,
    'train.batch_size': 2,
    'train.num_steps': 4,
    'train.warmup_steps': 2,
    'train.log_every_steps': 1,
    'eval.every_steps': 1000,
    'eval.num_batches': 1,
    'sample.every_steps': 1000,
    'sample.seconds': 0.01,
    'checkpoint.every_steps': 2,
    'checkpoint.max_to_keep': 10,
}


def tiny_config(overrides: Mapping[str, Any] | None = None) -> ml_collections.ConfigDict:
  """experiments/tiny.py with OVERRIDES, then `overrides` ({'train.num_steps': 2, ...})."""
  config = tiny.get_config()
  config.update_from_flattened_dict({**OVERRIDES, **(overrides or {})})
  return config


def train_command(workdir: str, *extra_flags: str,
                  overrides: Mapping[str, Any] | None = None) -> list[str]:
  """A train.py command line for tiny_config(overrides)."""
  flags = []
  for key, value in {**OVERRIDES, **(overrides or {})}.items():
    if isinstance(value, tuple):
      value = f'({",".join(str(v) for v in value)},)'
    flags.append(f'--config.{key}={value}')
  return [sys.executable, os.path.join(REPO, 'train.py'),
          f'--config={os.path.join(REPO, "experiments", "tiny.py")}', f'--workdir={workdir}',
          *flags, *extra_flags]


def run_env(**extra: str) -> dict[str, str]:
  """Environment of a subprocess: repo importable, quiet TensorFlow, 1 CPU device."""
  env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL='3',
             JAX_COMPILATION_CACHE_DIR=COMPILATION_CACHE,
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS='0')
  env.pop('XLA_FLAGS', None)
  env.update(extra)
  return env


def run_script(script: str, *flags: str) -> subprocess.CompletedProcess:
  """Runs a CLI of the repository (e.g. 'evaluate.py') with `flags` in run_env()."""
  return subprocess.run([sys.executable, script, *flags], cwd=REPO, env=run_env(),
                        capture_output=True, text=True, timeout=300)


def run_train(workdir: str, *extra_flags: str, env: dict[str, str] | None = None,
              overrides: Mapping[str, Any] | None = None) -> subprocess.CompletedProcess:
  return subprocess.run(train_command(workdir, *extra_flags, overrides=overrides), cwd=REPO,
                        env=env or run_env(), capture_output=True, text=True, timeout=300)


def checkpoint_params(workdir: str, step: int | None = None) -> dict[str, np.ndarray]:
  """The (EMA if kept) parameters of a checkpoint, flattened to 'a/b/c' -> array."""
  from flax import traverse_util
  from wavenet_jax import checkpointing
  variables = checkpointing.restore_for_inference(workdir, step).variables
  return {name: np.asarray(value) for name, value in
          traverse_util.flatten_dict(variables['params'], sep='/').items()}


def assert_params_close(actual: dict[str, np.ndarray], expected: dict[str, np.ndarray],
                        rtol: float = 1e-5, atol: float = 1e-6) -> None:
  assert actual.keys() == expected.keys()
  for name in expected:
    np.testing.assert_allclose(actual[name], expected[name], rtol=rtol, atol=atol, err_msg=name)
