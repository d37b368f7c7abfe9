r"""Generation from held-out sentences' linguistic features: does the audio follow them?

  python -m experiments.tools.tts_report --workdir=runs/tts_cpu \
      --output_dir=experiments/results/tts --num_utterances=8

For a model conditioned on linguistic features (experiments/tts_cpu.py), restores the latest
checkpoint (EMA parameters when the run kept them) and takes --num_utterances sentences of the
run's validation split (`report.split_examples`), taking the speakers in turn. Each sentence's
features are made from its .lab and audio as evaluate.py makes them (`FileFeatures.of_file`),
cut to the first --generate_seconds (and to the shortest sentence's length, so that all are
generated as one batch), and the audio they describe is generated with the sentence's speaker
(`TrainedModel.conditioning`, `synthesis.synthesize` folded as sample.py --features folds by
default: `synthesis.default_segments`). A run whose model does not read the features
(tts_cpu.py:no_features) is measured the same way, its audio generated with the speaker alone
(one sequence per sentence): the control, what the features are worth. Per sentence:

  F0             the generated audio's F0 track (`linguistic.f0_frames`: pYIN on the features'
                 5 ms framing; pause frames unvoiced, the features' own rule) against the F0
                 it was given: the features' log-F0 and voiced channels, un-normalised (the
                 real audio's pYIN track). Over the frames voiced in both: RMSE in cents and
                 the Pearson correlation of log-F0; over all frames: the fraction whose
                 voiced/unvoiced decisions agree (`audio_metrics.f0_agreement`).
  log-mel        the log-mel distance in dB to the real utterance (report.py's measure,
                 `audio_metrics.log_mel_distance_db`, |mel| floored at --floor_db).

Shares report.py's flags (importing it defines them): --workdir, --output_dir,
--num_utterances, --temperature, --seed, --floor_db; its own are --generate_seconds and
--num_written. Output: a markdown table (each sentence, then pooled per speaker and over all:
frame-pooled F0 RMSE, correlation weighted by the frames voiced in both, means of the rest) and,
as the last line, JSON with every figure, also written to OUTPUT_DIR/tts_report.json; for
the first --num_written sentences, WAV + PNG of the generated and the real audio
(`<stem>_generated`, `<stem>_real`).
"""
from wavenet_jax import cli

cli.exit_unless_run_as_module(__spec__, __file__)  # Run by path, `experiments` is not importable.
# pylint: disable=g-import-not-at-top,wrong-import-position
import json
import os
import pathlib
import time
from typing import Any

from absl import flags
import jax
import ml_collections
import numpy as np

from experiments.tools import report
from wavenet_jax import audio as audio_lib
from wavenet_jax import audio_metrics
from wavenet_jax import checkpointing
from wavenet_jax import features as features_lib
from wavenet_jax import linguistic
from wavenet_jax import synthesis

FLAGS = flags.FLAGS  # report.py's: workdir, output_dir, num_utterances, temperature, ...
_GENERATE_SECONDS = flags.DEFINE_float(
    'generate_seconds', 2.0, 'Seconds generated per sentence: its first ones (and at most the '
    "shortest chosen sentence's length).")
_NUM_WRITTEN = flags.DEFINE_integer('num_written', 3,
                                    'Sentences written as WAV + PNG (generated and real).')

# The figures of each sentence, pooled per speaker and over all sentences.
MEASURES = ('voiced_in_both', 'f0_rmse_cents', 'f0_correlation', 'voicing_agreement',
            'log_mel_db')


def take_speakers_in_turn(examples: list[tuple[str, np.ndarray, int]], count: int
                          ) -> list[tuple[str, np.ndarray, int]]:
  """The first `count` of (file, waveform, speaker id) examples, the speakers taken in turn
  (each speaker's in their order)."""
  by_speaker: dict[int, list[tuple[str, np.ndarray, int]]] = {}
  for example in examples:
    by_speaker.setdefault(example[2], []).append(example)
  queues = [by_speaker[speaker] for speaker in sorted(by_speaker)]
  chosen = []
  for index in range(max(map(len, queues))):
    chosen.extend(queue[index] for queue in queues if index < len(queue))
  return chosen[:count]


def f0_figures(given: np.ndarray, generated: np.ndarray,
               features: features_lib.FileFeatures) -> dict[str, Any]:
  """The generated audio's F0 against the F0 its features give (`audio_metrics.f0_agreement`).

  Args:
    given: float32 [frames, channels] linguistic features, not normalised.
    generated: float32 [time] audio generated from them, time <= frames * hop_length.
    features: the model's (hop, sample rate, phone set).
  """
  given_hz, given_voiced = linguistic.f0_of_features(given)
  hz, voiced = linguistic.f0_frames(generated, len(given), features.hop_length,
                                    features.sample_rate)
  voiced &= ~linguistic.pause_frames(given, features.phones)
  return audio_metrics.f0_agreement(given_hz, given_voiced, hz, voiced)


def unconditioned_features(config: ml_collections.ConfigDict) -> features_lib.FileFeatures:
  """The linguistic features of a run whose model does not read them (tts_cpu.py:no_features),
  not normalised: the F0 its generated audio is measured against."""
  phones = linguistic.phone_set(config.data.features.phones)
  channels = linguistic.num_channels(phones)
  return features_lib.FileFeatures(
      hop_length=config.data.features.hop_length, mean=np.zeros(channels, np.float32),
      std=np.ones(channels, np.float32), sample_rate=config.data.sample_rate,
      source=features_lib.LABELS, phones=phones)


def pooled(rows: list[dict[str, Any]]) -> dict[str, Any]:
  """The figures of sentences of equal length together: frame-pooled F0 RMSE (over all their
  frames voiced in both), correlation weighted by those frames, means of the rest."""
  figures = {'voiced_in_both': sum(row['voiced_in_both'] for row in rows)}
  voiced = [row for row in rows if row['f0_rmse_cents'] is not None]
  figures['f0_rmse_cents'] = float(np.sqrt(
      sum(row['voiced_in_both'] * row['f0_rmse_cents']**2 for row in voiced)
      / figures['voiced_in_both'])) if voiced else None
  correlated = [row for row in rows if row['f0_correlation'] is not None]
  figures['f0_correlation'] = float(np.average(
      [row['f0_correlation'] for row in correlated],
      weights=[row['voiced_in_both'] for row in correlated])) if correlated else None
  for key in ('voicing_agreement', 'log_mel_db'):
    figures[key] = float(np.mean([row[key] for row in rows]))
  return figures


@cli.exit_on_error(checkpointing.NoCheckpointError, audio_lib.AudioFileError, ValueError)
def main(argv: list[str]) -> None:
  del argv  # cli.run checks that there are no positional arguments.
  began = time.perf_counter()
  if _GENERATE_SECONDS.value <= 0 or FLAGS.num_utterances < 1:
    raise ValueError('--generate_seconds and --num_utterances must be positive.')
  trained = checkpointing.restore_for_inference(FLAGS.workdir)
  config, info = trained.config, trained.dataset_info
  if features_lib.source(config.data) != features_lib.LABELS:
    raise ValueError(f'--workdir={FLAGS.workdir}: not a run on linguistic features '
                     "(config.data.features.source='labels', experiments/tts_cpu.py).")
  features = trained.features or unconditioned_features(config)
  os.makedirs(FLAGS.output_dir, exist_ok=True)

  examples = take_speakers_in_turn(report.split_examples(config, info, 'validation'),
                                   FLAGS.num_utterances)
  hop, sample_rate = features.hop_length, info.sample_rate
  num_frames = min(round(_GENERATE_SECONDS.value * sample_rate),
                   *(len(waveform) for _, waveform, _ in examples)) // hop
  length = num_frames * hop
  given, inputs = [], []
  for file, waveform, speaker in examples:
    given.append(features.frames_of_file(pathlib.Path(config.data.wav_dir) / file,
                                         waveform)[:num_frames])
    inputs.append(trained.conditioning(
        speaker=info.speakers[speaker] if trained.model.num_speakers else None,
        features=given[-1] if trained.features else None))
  global_cond, local_cond = (
      None if inputs[0][key] is None else np.concatenate([i[key] for i in inputs])
      for key in ('global_cond', 'local_cond'))
  segments = 1
  if local_cond is not None:
    segments = synthesis.default_segments(num_frames, len(examples),
                                          synthesis.DEFAULT_OVERLAP_FRAMES, jax.local_devices())
  generating = time.perf_counter()
  generated = synthesis.synthesize(
      trained.model, trained.variables, jax.random.key(FLAGS.seed), num_samples=length - 1,
      batch_size=len(examples), temperature=FLAGS.temperature, global_cond=global_cond,
      local_cond=local_cond, segments=segments)
  generation_seconds = time.perf_counter() - generating

  rows = []
  for (file, waveform, speaker), frames, audio in zip(examples, given, generated):
    row = {'file': file, 'speaker': info.speakers[speaker],
           **f0_figures(frames, audio, features),
           'log_mel_db': audio_metrics.log_mel_distance_db(
               waveform[:length], audio, sample_rate, config.data.mel,
               floor_db=FLAGS.floor_db)}
    rows.append(row)
  for (file, waveform, _), audio in list(zip(examples, generated))[:_NUM_WRITTEN.value]:
    stem = pathlib.Path(file).stem
    for name, clip in ((f'{stem}_generated', audio), (f'{stem}_real', waveform[:length])):
      report.write_clip(FLAGS.output_dir, name, clip, sample_rate, config.data.mel,
                        length / sample_rate)

  groups = [(f'pooled ({name})', name, [row for row in rows if row['speaker'] == name])
            for name in sorted({row['speaker'] for row in rows})] + [('pooled', 'all', rows)]
  pooled_rows = [{'file': file, 'speaker': speaker, **pooled(group)}
                 for file, speaker, group in groups]
  shown = [{key: row[key] for key in ('file', 'speaker', *MEASURES)}
           for row in rows + pooled_rows]
  print('\n'.join(report.markdown_table(shown)) + '\n')
  figures = {'workdir': FLAGS.workdir, 'step': trained.step, 'seconds_per_sentence':
             length / sample_rate, 'segments': segments, 'temperature': FLAGS.temperature,
             'seed': FLAGS.seed, 'generation_seconds': generation_seconds, 'sentences': rows,
             'pooled': pooled_rows, 'report_seconds': time.perf_counter() - began}
  with open(os.path.join(FLAGS.output_dir, 'tts_report.json'), 'w', encoding='utf-8') as f:
    json.dump(figures, f, indent=1)
  print(json.dumps(figures))


if __name__ == '__main__':
  cli.run(main)
