"""Real-time factor of vocoding one utterance: one sequence against folded generation.

For each of --configs (experiments/vocoder_cpu.py: 10 layers, residual/gate/skip 32/64/64;
experiments/vocoder.py: 24 layers, kernel 3, 128/256/256), the model at random init (speed
does not depend on the values) vocodes --seconds of 80-bin mel frames (hop 256 at 16 kHz;
random values, as the speed does not depend on them either) with `synthesis.synthesize`,
as sample.py --mel_from does: one sequence (--segments=1), and folded into the automatic
number of segments (`synthesis.default_segments` for these devices; or --segments) with
the default overlap and crossfade. The rows are split over one CPU device per core
(`sampler.use_every_cpu_core`, as sample.py does).

Each variant runs once to compile (reported as `first`: compilation included), then
--repeats times, the variants alternating, and the median and range of those are reported.
Real-time factor = wall seconds / seconds of audio (below 1: faster than real time).

Command:
  python -m experiments.benchmarks.vocoding
Hardware: any; the figures in experiments/results/folding/README.md were measured on a
2-core x86 CPU.
Output: a line per measurement, then as the last line JSON
  {"vocoder_cpu": {"one_sequence": {"first": ..., "median": ..., "min": ..., "max": ...},
                   "folded": {..., "segments": N}}, "vocoder": {...}}
"""
from wavenet_jax import cli

cli.exit_unless_run_as_module(__spec__, __file__)  # Run by path, `experiments` is not importable.
# pylint: disable=g-import-not-at-top,wrong-import-position
import importlib
import json
import statistics
import time

from absl import app
from absl import flags
import jax
import numpy as np

from wavenet_jax import audio as audio_lib
from wavenet_jax import models
from wavenet_jax import sampler
from wavenet_jax import synthesis

_CONFIGS = flags.DEFINE_list('configs', ['vocoder_cpu', 'vocoder'], 'Experiment configs '
                             '(modules of experiments/) of the vocoders measured.')
_SECONDS = flags.DEFINE_float('seconds', 10.0, 'Seconds of audio vocoded.')
_REPEATS = flags.DEFINE_integer('repeats', 3, 'Timed runs of each variant (after the first).')
_SEGMENTS = flags.DEFINE_integer('segments', None, 'Folded segments; default '
                                 'synthesis.default_segments for these devices.')


def _timed(run) -> float:
  began = time.perf_counter()
  run()
  return time.perf_counter() - began


def measure(config_name: str) -> dict[str, dict[str, float]]:
  """{variant: {'first', 'median', 'min', 'max' real-time factors, 'segments'}}."""
  config = importlib.import_module(f'experiments.{config_name}').get_config()
  model = models.model_from_config(config.model, config.data, speakers=())
  sample_rate, hop = config.data.sample_rate, model.hop_length
  length = round(_SECONDS.value * sample_rate)
  frames = audio_lib.num_mel_frames(length, hop)
  features = np.random.default_rng(0).normal(
      size=(1, frames, model.local_cond_channels)).astype(np.float32)
  variables = model.init(jax.random.key(0), np.zeros((1, hop), np.int32), None,
                         features[:, :1])
  devices = jax.local_devices()
  folded = _SEGMENTS.value or synthesis.default_segments(
      frames, 1, synthesis.DEFAULT_OVERLAP_FRAMES, devices)
  print(f'{config_name}: {model.num_layers} layers, receptive field {model.receptive_field}; '
        f'{_SECONDS.value} s = {frames} frames; {len(devices)} {devices[0].platform} devices; '
        f'folded into {folded} segments', flush=True)
  variants = {'one_sequence': 1, 'folded': folded}

  def run(segments: int) -> None:
    synthesis.synthesize(model, variables, jax.random.key(1), num_samples=length - 1,
                         local_cond=features, segments=segments,
                         mesh=sampler.batch_mesh(segments))

  first = {name: _timed(lambda: run(segments)) for name, segments in variants.items()}
  walls = {name: [] for name in variants}
  for _ in range(_REPEATS.value):
    for name, segments in variants.items():
      walls[name].append(_timed(lambda: run(segments)))
  results = {}
  for name, segments in variants.items():
    rtf = [wall / _SECONDS.value for wall in walls[name]]
    results[name] = {'segments': segments, 'first': first[name] / _SECONDS.value,
                     'median': statistics.median(rtf), 'min': min(rtf), 'max': max(rtf)}
    print(f'  {name:12} segments {segments:3d}: real-time factor {results[name]["median"]:.3f} '
          f'(median of {len(rtf)}; range {min(rtf):.3f} - {max(rtf):.3f}; first run, '
          f'compilation included, {results[name]["first"]:.3f})', flush=True)
  return results


def main(argv):
  del argv
  if _REPEATS.value < 1 or _SECONDS.value <= 0:
    raise app.UsageError('--repeats must be >= 1 and --seconds > 0.')
  results = {name: measure(name) for name in _CONFIGS.value}
  print(json.dumps({name: {variant: {key: round(value, 3) for key, value in figures.items()}
                           for variant, figures in by_variant.items()}
                    for name, by_variant in results.items()}))


if __name__ == '__main__':
  sampler.use_every_cpu_core()
  app.run(main)
