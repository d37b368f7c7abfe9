"""Real-time factor of `sample.py`, end to end, for the default model and for B1.

default: experiments/default.py, 30 layers = 3 stacks of dilations 1..512, residual 64, gate
128, skip 256. B1: the same with --config.model.num_layers=20 --config.model.num_stacks=2.
Each model gets a 1-step checkpoint from train.py in a temporary workdir (embedded corpus,
batch 2 x 1000-sample crops, no eval or clips: only the architecture matters for speed), then
`sample.py --seconds=S --chunk_size=C` runs as a subprocess at each batch size, without the
persistent compilation cache (a user's first run compiles too).

Reported per (model, batch), in wall seconds per second of audio per clip (lower is faster;
below 1 is faster than real time), as sample.py prints them:
  end_to_end:   sample.py's setup (checkpoint restore) + generation, compilation included;
  steady_state: the chunks after the first (no compilation);
and process_wall: the whole subprocess (Python and library imports, PNG writing included).

Command:
  python -m experiments.benchmarks.sample_cli
Hardware: any; the figures in docs/performance.md were measured on a 2-core x86 CPU.
Output: a table, then as the last line JSON
  {"default": {"batch_1": {"end_to_end": ..., "steady_state": ..., "process_wall": ...},
               "batch_16": {...}}, "B1": {...}}
"""
from wavenet_jax import cli

cli.exit_unless_run_as_module(__spec__, __file__)  # Run by path, `experiments` is not importable.
# pylint: disable=g-import-not-at-top,wrong-import-position
import json
import os
import re
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags

_SECONDS = flags.DEFINE_float('seconds', 2.0, 'Seconds of audio per clip.')
_CHUNK_SIZE = flags.DEFINE_integer('chunk_size', 4000, 'sample.py --chunk_size (several chunks '
                                   'are needed for the steady state).')
_BATCH_SIZES = flags.DEFINE_list('batch_sizes', ['1', '16'], 'sample.py --batch_size values.')

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODELS = {
    'default': [],
    'B1': ['--config.model.num_layers=20', '--config.model.num_stacks=2'],
}
# A checkpoint whose training costs seconds; none of these change the architecture.
TRAIN_FLAGS = [
    '--config.train.num_steps=1', '--config.train.batch_size=2',
    '--config.data.segment_length=1000', '--config.data.read_threads=1',
    '--config.train.warmup_steps=0', '--config.eval.every_steps=0',
    '--config.sample.every_steps=0', '--config.checkpoint.every_steps=1',
]
_RTF_LINE = re.compile(r'real-time factor: end_to_end=(\S+) steady_state=(\S+)')


def _env() -> dict[str, str]:
  """The caller's environment, repo importable, without a persistent compilation cache."""
  env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL='3')
  env.pop('JAX_COMPILATION_CACHE_DIR', None)
  return env


def _run(command: list[str]) -> tuple[str, float]:
  """(stdout, wall seconds) of a command that must succeed."""
  began = time.perf_counter()
  result = subprocess.run(command, cwd=REPO, env=_env(), capture_output=True, text=True)
  if result.returncode != 0:
    sys.exit(f'{" ".join(command)} failed:\n{result.stderr[-3000:]}')
  return result.stdout, time.perf_counter() - began


def train_checkpoint(workdir: str, model_flags: list[str]) -> None:
  _run([sys.executable, 'train.py', '--config=experiments/default.py', f'--workdir={workdir}',
        *TRAIN_FLAGS, *model_flags])


def sample_rtf(workdir: str, batch_size: int) -> dict[str, float | None]:
  """sample.py's real-time factors (and the process's) at this batch size."""
  stdout, wall = _run([sys.executable, 'sample.py', f'--workdir={workdir}',
                       f'--output={workdir}/out.wav', f'--seconds={_SECONDS.value}',
                       f'--chunk_size={_CHUNK_SIZE.value}', f'--batch_size={batch_size}'])
  match = _RTF_LINE.search(stdout)
  if match is None:
    sys.exit(f'no real-time factor line in sample.py\'s output:\n{stdout}')
  end_to_end, steady_state = match.groups()
  return {'end_to_end': float(end_to_end),
          'steady_state': None if steady_state == 'n/a' else float(steady_state),
          'process_wall': wall / _SECONDS.value}


def _format(value: float | None) -> str:
  return 'n/a' if value is None else f'{value:.2f}'


def main(argv):
  del argv
  batch_sizes = [int(b) for b in _BATCH_SIZES.value]
  print(f'sample.py --seconds={_SECONDS.value} --chunk_size={_CHUNK_SIZE.value}; '
        f'real-time factor = wall s per s of audio per clip', flush=True)
  print(f'{"model":8} {"batch":>5} {"end to end":>11} {"steady":>8} {"process":>8}', flush=True)
  results = {}
  for name, model_flags in MODELS.items():
    with tempfile.TemporaryDirectory() as workdir:
      train_checkpoint(workdir, model_flags)
      results[name] = {}
      for batch_size in batch_sizes:
        rtf = sample_rtf(workdir, batch_size)
        results[name][f'batch_{batch_size}'] = rtf
        print(f'{name:8} {batch_size:5d} {_format(rtf["end_to_end"]):>11} '
              f'{_format(rtf["steady_state"]):>8} {_format(rtf["process_wall"]):>8}', flush=True)
  print(json.dumps({name: {batch: {key: None if value is None else round(value, 3)
                                   for key, value in rtf.items()}
                           for batch, rtf in by_batch.items()}
                    for name, by_batch in results.items()}))


if __name__ == '__main__':
  app.run(main)
