r"""Quality of folded generation's joins: folded against one-sequence vocoding, same model.

Restores a vocoder run's last checkpoint (EMA weights when kept) and takes the first
--num_utterances held-out utterances of its validation split (`report.split_examples`). It
shares experiments/tools/report.py's flags (importing it defines them): --workdir, --output_dir,
--num_utterances, --temperature, --seed, --floor_db; its own are --segment_frames,
--overlaps and --crossfade.
Each utterance is vocoded from its own mel (`TrainedModel.features`) at --temperature:
  one_sequence:    `synthesis.synthesize` as one sequence (seed --seed + utterance index);
  one_sequence_b:  the same with another seed (that + 1000): how far two samplings
                   from the same mel lie apart, the yardstick for the folded figures;
  overlap_O:       folded into frames // --segment_frames segments with O frames of warm-up
                   (for each O of --overlaps) and --crossfade samples of crossfade, with the
                   seed of one_sequence.
Figures per utterance against the original: wide-band PESQ, STOI, log-mel distance (dB,
|mel| floored at --floor_db as in report.py); and a seam check: the spectral flux (mean over
frequency bins of |change in dB| between consecutive STFT frames, n_fft 512, hop 128,
magnitudes floored at --floor_db) in the frames whose window holds a join, over the mean
flux of all other frames (1: the joins look like anywhere else). one_sequence's flux ratio at
the same places is the control (speech changes at frame boundaries too). `identical` is the
fraction of the folded samples after the first segment that equal one_sequence's: a warm-up
draws the noise the segment before it draws at the same places, so it may couple to it
sample for sample; with every join coupled, folded generation is one-sequence generation.

Command (the figures in experiments/results/folding/README.md):
  python -m experiments.tools.folding_report --workdir=runs/vocoder_cpu \
      --output_dir=experiments/results/folding --num_utterances=10
Hardware: a 2-core x86 CPU (the rows split over both cores), a few minutes.
Output: a table per variant (median and range over the utterances) on stdout, and
OUTPUT_DIR/folding.json with every figure.
"""
from wavenet_jax import cli

cli.exit_unless_run_as_module(__spec__, __file__)  # Run by path, `experiments` is not importable.
# pylint: disable=g-import-not-at-top,wrong-import-position
import json
import os
import statistics
from typing import Any

from absl import flags
import jax
import numpy as np

from experiments.tools import report
from wavenet_jax import audio_metrics
from wavenet_jax import checkpointing
from wavenet_jax import sampler
from wavenet_jax import synthesis

FLAGS = flags.FLAGS  # report.py's: workdir, output_dir, num_utterances, temperature, ...
_SEGMENT_FRAMES = flags.DEFINE_integer('segment_frames', 20, 'Mel frames per segment (own '
                                       'audio): an utterance of F frames gets F // this.')
_OVERLAPS = flags.DEFINE_list('overlaps', ['0', '1', '2', '4', '8'], 'Warm-up frames compared.')
_CROSSFADE = flags.DEFINE_integer('crossfade', synthesis.DEFAULT_CROSSFADE,
                                  'Crossfade samples at each join.')

# The seam check's STFT.
FLUX_N_FFT = 512
FLUX_HOP = 128


def spectral_flux(waveform: np.ndarray, floor_db: float) -> np.ndarray:
  """float32 [frames - 1]: mean over bins of |dB change| from STFT frame t to t + 1.

  Frame t's Hann window covers samples [t * FLUX_HOP, t * FLUX_HOP + FLUX_N_FFT).
  """
  count = 1 + (len(waveform) - FLUX_N_FFT) // FLUX_HOP
  index = np.arange(FLUX_N_FFT)[None] + FLUX_HOP * np.arange(count)[:, None]
  magnitude = np.abs(np.fft.rfft(waveform[index] * np.hanning(FLUX_N_FFT), axis=1))
  decibels = 20 * np.log10(np.maximum(magnitude, 10**(floor_db / 20)))
  return np.mean(np.abs(np.diff(decibels, axis=0)), axis=1)


def seam_flux_ratio(waveform: np.ndarray, joins: list[int], floor_db: float) -> float:
  """Mean flux of the frame pairs whose windows hold a join sample / mean flux elsewhere."""
  flux = spectral_flux(waveform, floor_db)
  starts = FLUX_HOP * np.arange(len(flux))  # Pair t: windows from starts[t] to + hop + n_fft.
  at_join = np.zeros(len(flux), bool)
  for join in joins:
    at_join |= (starts <= join) & (join < starts + FLUX_HOP + FLUX_N_FFT)
  return float(np.mean(flux[at_join]) / np.mean(flux[~at_join]))


def _summary(values: list[float]) -> str:
  return (f'{statistics.median(values):.3f} [{min(values):.3f}, {max(values):.3f}]'
          if values else 'n/a')


@cli.exit_on_error(checkpointing.NoCheckpointError, ValueError)
def main(argv: list[str]) -> None:
  del argv
  overlaps = [int(overlap) for overlap in _OVERLAPS.value]
  trained = checkpointing.restore_for_inference(FLAGS.workdir)
  config, info, model, variables = (trained.config, trained.dataset_info, trained.model,
                                    trained.variables)
  rate, hop = info.sample_rate, model.hop_length
  examples = report.split_examples(config, info, 'validation', FLAGS.num_utterances)
  print(f'{FLAGS.workdir} step {trained.step}: {len(examples)} held-out utterances; '
        f'{jax.device_count()} devices', flush=True)
  rows = []
  for index, (file, original, _) in enumerate(examples):
    features = trained.features(original)[None]
    frames = trained.features.num_frames(len(original))
    segments = max(2, frames // _SEGMENT_FRAMES.value)

    def vocode(seed: int, segments: int = 1, overlap: int = 0) -> np.ndarray:
      return synthesis.synthesize(
          model, variables, jax.random.key(seed), num_samples=len(original) - 1,
          temperature=FLAGS.temperature, local_cond=features, segments=segments,
          overlap_frames=overlap, crossfade=_CROSSFADE.value,
          mesh=sampler.batch_mesh(segments))[0]

    seed = FLAGS.seed + index
    outputs = {'one_sequence': vocode(seed), 'one_sequence_b': vocode(seed + 1000)}
    for overlap in overlaps:
      outputs[f'overlap_{overlap}'] = vocode(seed, segments, overlap)
    # Joins of the folded outputs: the same for every overlap.
    plan = synthesis.fold_plan(frames, segments, 0)
    joins = [bound * hop for bound in plan.bounds[1:-1]]
    later = slice(joins[0], None)
    row = {'file': file, 'seconds': len(original) / rate, 'segments': segments}
    for name, waveform in outputs.items():
      row[f'{name}_pesq'] = audio_metrics.wideband_pesq(original, waveform, rate)
      row[f'{name}_stoi'] = audio_metrics.stoi(original, waveform, rate)
      row[f'{name}_log_mel_db'] = audio_metrics.log_mel_distance_db(
          original, waveform, rate, config.data.mel, floor_db=FLAGS.floor_db)
      row[f'{name}_seam_flux_ratio'] = seam_flux_ratio(waveform, joins, FLAGS.floor_db)
      row[f'{name}_identical'] = float(np.mean(waveform[later]
                                               == outputs['one_sequence'][later]))
    rows.append(row)
    print(f'{index}: {file} {row["seconds"]:.2f} s, {segments} segments', flush=True)

  names = ['one_sequence', 'one_sequence_b'] + [f'overlap_{overlap}' for overlap in overlaps]
  measures = ('pesq', 'stoi', 'log_mel_db', 'seam_flux_ratio', 'identical')
  print(f'median [range] over {len(rows)} utterances; segments of {_SEGMENT_FRAMES.value} '
        f'frames, crossfade {_CROSSFADE.value} samples, temperature {FLAGS.temperature}')
  print('| variant | ' + ' | '.join(measures) + ' |')
  print('|---' * (len(measures) + 1) + '|')
  summary: dict[str, Any] = {}
  for name in names:
    summary[name] = {measure: [row[f'{name}_{measure}'] for row in rows
                               if row[f'{name}_{measure}'] is not None]
                     for measure in measures}
    print(f'| {name} | ' + ' | '.join(_summary(summary[name][measure]) for measure in measures)
          + ' |')
  os.makedirs(FLAGS.output_dir, exist_ok=True)
  with open(os.path.join(FLAGS.output_dir, 'folding.json'), 'w', encoding='utf-8') as f:
    json.dump({'workdir': FLAGS.workdir, 'step': trained.step,
               'segment_frames': _SEGMENT_FRAMES.value, 'crossfade': _CROSSFADE.value,
               'temperature': FLAGS.temperature, 'utterances': rows}, f, indent=1)


if __name__ == '__main__':
  sampler.use_every_cpu_core()
  cli.run(main)
