r"""Computes the reported figures of a training run from its workdir alone.

  python -m experiments.tools.report --workdir=runs/speech_cpu \
      --output_dir=experiments/results/speech

Restores the latest checkpoint (config, dataset info, EMA parameters when the run kept them)
and computes, on this host's first device:

  every model      validation bits/sample: the whole held-out files of the run's validation
                   split (the examples of the prepared TFDS 'validation' split, read back
                   as stored, silence-trimmed as in training when config.data.top_db > 0),
                   scored teacher-forced with wavenet_jax.evaluation.score_classes, the code
                   of evaluate.py; the same files under an order-2 count model of the
                   training files (--count_baseline). Both also per speaker when the
                   dataset has several speakers. Training wall time, last logged
                   training and validation (crop) bits/sample from the TensorBoard events.
  unconditional    --num_clips clips of --seconds sampled from silence; the first
                   --clip_seconds of the first one written as WAV + PNG.
  speaker-cond.    --num_clips clips per speaker; mean f0 over the voiced frames of all of
                   a speaker's clips (librosa.pyin, fmin=60, fmax=400, as speakers.csv was
                   measured) next to speakers.csv's mean_f0_hz; WAV + PNG per speaker.
  mel-cond.        resynthesis of the first --num_utterances validation utterances (cut to
                   the shortest of them) from their log-mel spectrograms, and Griffin-Lim
                   (librosa, --griffin_lim_iters iterations, seeded) from the same mel;
                   against the original, of each: log-mel spectral distance and
                   mel-cepstral distortion (|mel| floored at --floor_db), wide-band PESQ
                   (ITU-T P.862.2, the pesq package) and STOI (pystoi), with the original
                   through the 8-bit μ-law codec as the best an 8-bit vocoder can do; WAV
                   + PNG of original, WaveNet and Griffin-Lim for one.

--wav_dir=FOLDER takes a folder of held-out files instead of the validation split (e.g. another
speaker's, for an adapted model): bits/sample of all its files as evaluate.py scores them (no
count model, no per-speaker table), resynthesis of its first --num_utterances files (in name
order). --mel_from_files: a mel vocoder conditioned on each file's `<stem>.npy` log-mel frames
(its own convention, not normalised: another model's predicted mels) instead of the audio's own;
the distances are still against the audio. --step: a checkpoint other than the latest.

Prints markdown tables, then as the last line JSON with every figure.
"""
from wavenet_jax import cli

cli.exit_unless_run_as_module(__spec__, __file__)  # Run by path, `experiments` is not importable.
# pylint: disable=g-import-not-at-top,wrong-import-position
import csv
import json
import os
import pathlib
import time
from typing import Any, Optional

from absl import flags
import jax
import ml_collections
import numpy as np
import PIL.Image

from wavenet_jax import audio as audio_lib
from wavenet_jax import audio_metrics
from wavenet_jax import checkpointing
from wavenet_jax import datasets
from wavenet_jax import evaluation
from wavenet_jax import features as features_lib
from wavenet_jax import file_listing
from wavenet_jax import mulaw
from wavenet_jax import plotting
from wavenet_jax import summaries
from wavenet_jax import synthesis
from wavenet_jax.dataset_info import DatasetInfo
from wavenet_jax.features import LogMel
from wavenet_jax.models import WaveNet

_WORKDIR = flags.DEFINE_string('workdir', None, 'Training run directory.', required=True)
_OUTPUT_DIR = flags.DEFINE_string('output_dir', None, 'Folder for the WAV and PNG files.',
                                  required=True)
_SECONDS = flags.DEFINE_float('seconds', 3.0, 'Seconds per generated clip (measured).')
_CLIP_SECONDS = flags.DEFINE_float('clip_seconds', 1.0, 'Seconds of each clip written as WAV.')
_NUM_CLIPS = flags.DEFINE_integer('num_clips', 4, 'Generated clips (per speaker if conditioned).')
_NUM_UTTERANCES = flags.DEFINE_integer('num_utterances', 4,
                                       'Validation utterances resynthesised (vocoders).')
_GRIFFIN_LIM_ITERS = flags.DEFINE_integer(
    'griffin_lim_iters', 64, 'Griffin-Lim iterations (64: the setting of the PESQ / STOI '
    'reference figures in experiments/results/README.md).')
_FLOOR_DB = flags.DEFINE_float(
    'floor_db', -80.0, 'Vocoder distances: |mel| floor in dB for both signals (the corpus\'s '
    'digital-silence padding would otherwise dominate: any output noise there is ~100 dB off).')
_TEMPERATURE = flags.DEFINE_float('temperature', 1.0, 'Sampling temperature.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of the sampling noise.')
_SPEAKERS_CSV = flags.DEFINE_string(
    'speakers_csv', None, "CSV with 'speaker' and 'mean_f0_hz' columns (default: "
    'speakers.csv in the run\'s config.data.wav_dir).')
_COUNT_BASELINE = flags.DEFINE_bool(
    'count_baseline', True, 'Also score the held-out files under an order-2 count model of '
    'the training files\' μ-law classes (add-0.5 smoothing).')
_MAX_VALIDATION_FILES = flags.DEFINE_integer(
    'max_validation_files', None, 'Score only the first N validation files (default: all).')
_STEP = flags.DEFINE_integer('step', None, 'Checkpoint step (default: the latest).')
_WAV_DIR = flags.DEFINE_string(
    'wav_dir', None, 'Score and resynthesise this folder\'s files (as evaluate.py scores them) '
    'instead of the run\'s validation split.')
_MEL_FROM_FILES = flags.DEFINE_bool(
    'mel_from_files', False, 'With --wav_dir, a mel vocoder reads each file\'s log-mel from its '
    '<stem>.npy (its own convention, not normalised) instead of computing it from the audio.')

PNG_COLOURS = 32
PNG_SCALE = 0.7


# ------------------------------------------------------------------------------------------
# The run's validation split and training log.
# ------------------------------------------------------------------------------------------


def split_examples(config: ml_collections.ConfigDict, info: DatasetInfo,
                   split: str, max_files: Optional[int] = None
                   ) -> list[tuple[str, np.ndarray, int]]:
  """(file, waveform float32 [time], speaker id) of a split of the run's dataset, in order.

  The waveforms are those of the prepared TFDS split (the one the trainer read),
  silence-trimmed as in training when config.data.top_db > 0.

  Args:
    split: 'train' or 'validation': the run's training or held-out files.
    max_files: read only the first max_files (default: all).

  Raises:
    ValueError: if the split is empty (no validation split: validation_fraction = 0).
  """
  source = datasets.audio_source(config.data)
  examples = source.data_source(
      source.validation_split if split == 'validation' else source.train_split)
  if not len(examples):
    raise ValueError(f'the dataset of config.data.wav_dir={config.data.wav_dir!r} has no '
                     f'{split} split (config.data.validation_fraction='
                     f'{config.data.validation_fraction}).')
  count = len(examples) if max_files is None else min(max_files, len(examples))
  read = []
  for index in range(count):
    example = examples[index]
    waveform = source.waveform(example, info.sample_rate)
    if config.data.top_db > 0:
      waveform = audio_lib.trim_silence(waveform, config.data.top_db)
    file = example.get('file', str(index))
    read.append((file.decode() if isinstance(file, bytes) else str(file), waveform,
                 source.speaker_id(example)))
  return read


def score_examples(model: WaveNet, variables: Any, features: Optional[LogMel],
                   info: DatasetInfo,
                   examples: list[tuple[str, np.ndarray, int]]
                   ) -> tuple[evaluation.Score, dict[str, evaluation.Score]]:
  """Teacher-forced score of whole files with the model's conditioning (as evaluate.py).

  features: the checkpoint's (`TrainedModel.features`); None: not locally conditioned.

  Returns:
    (the score of all examples, the score of each speaker's examples by speaker name;
    empty when the dataset has fewer than two speakers).
  """
  # speaker id -> [nats, μ-law nats, scored samples, files]
  totals: dict[int, list[float]] = {}
  for _, waveform, speaker in examples:
    nats, mulaw_nats = evaluation.score_waveform(model, variables, waveform, features,
                                                 speaker if model.num_speakers else None)
    total = totals.setdefault(speaker, [0.0, 0.0, 0, 0])
    total[0] += nats
    total[1] += mulaw_nats
    total[2] += len(waveform) - 1
    total[3] += 1
  overall = evaluation.Score(*(sum(t[i] for t in totals.values()) for i in range(4)))
  per_speaker = {info.speakers[speaker]: evaluation.Score(*total)
                 for speaker, total in sorted(totals.items())} if len(info.speakers) > 1 else {}
  return overall, per_speaker


def training_log(workdir: str) -> dict[str, Any]:
  """From the run's TensorBoard events: wall seconds between the first and last scalar (None
  without events), and the last 'train/bits_per_sample', 'train/steps_per_s',
  'eval/bits_per_sample' and 'eval/mulaw_bits_per_sample' with the step each was logged at."""
  scalars = summaries.read_scalars(workdir)
  wall_times = [wall_time for values in scalars.values() for wall_time, _, _ in values]
  log = {'logged_seconds': (max(wall_times) - min(wall_times)) if wall_times else None}
  for tag in ('train/bits_per_sample', 'train/steps_per_s', 'eval/bits_per_sample',
              'eval/mulaw_bits_per_sample'):
    if tag in scalars:
      _, log[tag + '@step'], log[tag] = scalars[tag][-1]
  return log


# ------------------------------------------------------------------------------------------
# Generation.
# ------------------------------------------------------------------------------------------


def write_clip(output_dir: str, name: str, waveform: np.ndarray, sample_rate: int,
               mel_config: Any, seconds: float) -> str:
  """Writes the first `seconds` of a waveform as NAME.wav and NAME.png; returns the WAV path.

  The PNG is scaled to PNG_SCALE and reduced to a PNG_COLOURS palette (a sixth of the size)
  to be small enough to commit.
  """
  clip = waveform[:round(seconds * sample_rate)]
  path = os.path.join(output_dir, f'{name}.wav')
  audio_lib.write_wav(path, clip, sample_rate)
  png_path = os.path.join(output_dir, f'{name}.png')
  plotting.save_waveform_and_spectrogram(png_path, clip, sample_rate, mel_config, title=name)
  with PIL.Image.open(png_path) as image:
    size = (round(image.width * PNG_SCALE), round(image.height * PNG_SCALE))
    palette_image = (image.convert('RGB').resize(size, PIL.Image.Resampling.LANCZOS)
                     .quantize(colors=PNG_COLOURS))
  palette_image.save(png_path, optimize=True)
  return path


def generate(model: WaveNet, variables: Any, num_samples: int, seed: int, temperature: float,
             global_cond: Optional[np.ndarray] = None,
             local_cond: Optional[np.ndarray] = None, batch_size: int = 1) -> np.ndarray:
  """float32 [batch, 1 + num_samples]: synthesis.synthesize from one silent start sample."""
  if global_cond is not None:
    batch_size = len(global_cond)
  if local_cond is not None:
    batch_size = len(local_cond)
  return synthesis.synthesize(model, variables, jax.random.key(seed), num_samples=num_samples,
                              batch_size=batch_size, temperature=temperature,
                              global_cond=global_cond, local_cond=local_cond)


def speaker_f0_table(model: WaveNet, variables: Any, info: DatasetInfo,
                     corpus_f0_hz: dict[str, float], num_clips: int, seconds: float, seed: int,
                     temperature: float) -> tuple[list[dict[str, Any]], np.ndarray]:
  """Per speaker: mean f0 of num_clips generated clips against the corpus's mean f0.

  Returns:
    (rows {'speaker', 'corpus_f0_hz', 'generated_f0_hz' (None without a voiced frame),
    'voiced_fraction'}, the generated float32 [num_speakers * num_clips, time] waveforms,
    speaker-major).
  """
  speakers = np.repeat(np.arange(len(info.speakers), dtype=np.int32), num_clips)
  waveforms = generate(model, variables, round(seconds * info.sample_rate), seed, temperature,
                       global_cond=speakers)
  rows = []
  for speaker_index, name in enumerate(info.speakers):
    clips = waveforms[speakers == speaker_index]
    f0 = np.concatenate([audio_metrics.voiced_f0_hz(clip, info.sample_rate)
                         for clip in clips])
    num_frames = sum(1 + len(clip) // 512 for clip in clips)  # pyin's default hop: 512.
    rows.append({'speaker': name, 'corpus_f0_hz': corpus_f0_hz.get(name),
                 'generated_f0_hz': float(np.mean(f0)) if len(f0) else None,
                 'voiced_fraction': len(f0) / num_frames})
  return rows, waveforms


def read_corpus_f0(path: str) -> dict[str, float]:
  """speaker -> mean_f0_hz of a speakers.csv ($DATA/speech/speakers.csv format)."""
  try:
    with open(path, newline='', encoding='utf-8') as f:
      return {row['speaker']: float(row['mean_f0_hz']) for row in csv.DictReader(f)}
  except (OSError, KeyError, ValueError) as error:
    raise ValueError(f'--speakers_csv={path}: cannot read speaker and mean_f0_hz columns '
                     f'({error!r}).') from error


def folder_utterances(wav_dir: str, sample_rate: int, features: features_lib.Features,
                      count: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
  """(file, float32 [time] waveform, its normalised features float32 [frames, channels]) of
  the first `count` audio files of wav_dir in name order (features.of_file: features from
  files read from `<stem>.npy` beside each).

  Raises:
    ValueError: naming --wav_dir or the file, for a file that cannot be read or has no
      features.
  """
  root = pathlib.Path(wav_dir).expanduser().resolve()
  utterances = []
  for entry in file_listing.scan_folder(wav_dir, '--wav_dir').entries[:count]:
    try:
      waveform = audio_lib.load_audio(root / entry.file, sample_rate)
    except audio_lib.AudioFileError as error:
      raise ValueError(f'--wav_dir: {entry.file}: {error.reason}') from None
    utterances.append((entry.file, waveform, features.of_file(root / entry.file, waveform)))
  return utterances


def vocoder_table(model: WaveNet, variables: Any,
                  utterances: list[tuple[str, np.ndarray, np.ndarray]], sample_rate: int,
                  mel_config: Any, griffin_lim_iters: int, seed: int, temperature: float,
                  floor_db: float
                  ) -> tuple[list[dict[str, Any]], np.ndarray, np.ndarray, np.ndarray]:
  """WaveNet resynthesis and Griffin-Lim of utterances (cut to the shortest) from their mel.

  utterances: (file, float32 [time] waveform, the normalised features of the whole file
  float32 [frames, channels], the model's conditioning), cut with the waveform as a training
  crop's are. Griffin-Lim reconstructs from the true log-mel of mel_config (config.data.mel),
  in which the distances are measured too. Next to both, the original itself through the
  8-bit μ-law codec: the distance any 8-bit μ-law vocoder (WaveNet included) keeps even when
  it is perfect.

  Returns:
    (rows {'file', '{system}_log_mel_db', '{system}_mcd_db', '{system}_pesq',
    '{system}_stoi' for system in wavenet, griffin_lim, mulaw_original}, originals, WaveNet
    and Griffin-Lim waveforms, each float32 [utterances, time]).

  Raises:
    ValueError: if pesq or pystoi is not installed, or PESQ or STOI cannot score an
      utterance (shorter than 0.4 s, no speech found, a silent resynthesis).
  """
  length = min(len(waveform) for _, waveform, _ in utterances)
  originals = np.stack([waveform[:length] for _, waveform, _ in utterances])
  num_frames = audio_lib.num_mel_frames(length, model.hop_length)
  wavenet = generate(model, variables, length - 1, seed, temperature,
                     local_cond=np.stack([frames[:num_frames] for _, _, frames in utterances]))
  griffin_lim = np.stack([
      audio_metrics.griffin_lim_from_log_mel(
          audio_lib.log_mel(original, sample_rate, mel_config), sample_rate,
          mel_config, length, griffin_lim_iters)
      for original in originals])
  rows = []
  for (file, _, _), original, resynthesis, reconstruction in zip(utterances, originals, wavenet,
                                                                 griffin_lim):
    row = {'file': file}
    for system, estimate in (('wavenet', resynthesis), ('griffin_lim', reconstruction),
                             ('mulaw_original', mulaw.decode(mulaw.encode(original)))):
      row[f'{system}_log_mel_db'] = audio_metrics.log_mel_distance_db(
          original, estimate, sample_rate, mel_config, floor_db=floor_db)
      row[f'{system}_mcd_db'] = audio_metrics.mel_cepstral_distortion_db(
          original, estimate, sample_rate, mel_config, floor_db=floor_db)
      row[f'{system}_pesq'] = audio_metrics.wideband_pesq(original, estimate, sample_rate)
      row[f'{system}_stoi'] = audio_metrics.stoi(original, estimate, sample_rate)
    rows.append(row)
  return rows, originals, wavenet, griffin_lim


# ------------------------------------------------------------------------------------------
# The report.
# ------------------------------------------------------------------------------------------


def _cell(value: Any) -> str:
  if value is None:
    return 'n/a'
  return f'{value:.2f}' if isinstance(value, float) else str(value)


def markdown_table(rows: list[dict[str, Any]]) -> list[str]:
  header = list(rows[0])
  lines = ['| ' + ' | '.join(header) + ' |', '|' + ' --- |' * len(header)]
  for row in rows:
    lines.append('| ' + ' | '.join(_cell(row[key]) for key in header) + ' |')
  return lines


@cli.exit_on_error(checkpointing.NoCheckpointError, audio_lib.AudioFileError, ValueError)
def main(argv: list[str]) -> None:
  del argv  # cli.run checks that there are no positional arguments.
  began = time.perf_counter()
  workdir, output_dir = _WORKDIR.value, _OUTPUT_DIR.value
  trained = checkpointing.restore_for_inference(workdir, _STEP.value)
  config, info, model, variables, step = (trained.config, trained.dataset_info, trained.model,
                                          trained.variables, trained.step)
  features = trained.features
  if features is not None and not isinstance(features, LogMel):
    raise ValueError(f'--workdir={workdir}: a model on features from {features.source!r}; '
                     'score it with evaluate.py --wav_dir, measure its generation with '
                     'python -m experiments.tools.tts_report.')
  if _MEL_FROM_FILES.value:
    if not _WAV_DIR.value or features is None:
      raise ValueError('--mel_from_files needs --wav_dir and a mel vocoder (a run of '
                       f'config.data.features.source=\'mel\'): --workdir={workdir} is '
                       f'{"not locally conditioned" if features is None else "one"}.')
    features = features.read_from_files()
  os.makedirs(output_dir, exist_ok=True)
  sample_rate, mel_config = info.sample_rate, config.data.mel
  figures: dict[str, Any] = {'workdir': workdir, 'step': step, 'wav_dir': _WAV_DIR.value}

  log = training_log(workdir)
  baseline, speaker_rows, utterances = None, [], []
  if _WAV_DIR.value:
    score = evaluation.score_folder(model, variables, info, features, _WAV_DIR.value,
                                    setting='--wav_dir')
    print(file_listing.skipped_line(_WAV_DIR.value, score.skipped) or
          f'files scored: all {score.num_files} of --wav_dir={_WAV_DIR.value}')
    if model.local_cond_channels:
      utterances = folder_utterances(_WAV_DIR.value, sample_rate, features,
                                     _NUM_UTTERANCES.value)
  else:
    examples = split_examples(config, info, 'validation', _MAX_VALIDATION_FILES.value)
    score, speaker_scores = score_examples(model, variables, features, info, examples)
    print(f'validation files scored ({score.num_files}): '
          + ', '.join(file for file, _, _ in examples))
    if _COUNT_BASELINE.value:
      train_classes = [mulaw.encode(waveform)
                       for _, waveform, _ in split_examples(config, info, 'train')]
      held_out_classes = [mulaw.encode(waveform) for _, waveform, _ in examples]
      baseline = audio_metrics.count_model_bits_per_sample(train_classes, held_out_classes)
      figures['order2_count_model_bits_per_sample'] = baseline
    for name, speaker_score in speaker_scores.items():
      row = {'speaker': name, 'held-out files': speaker_score.num_files,
             'validation bits/sample': speaker_score.bits_per_sample,
             'bits per μ-law class': speaker_score.mulaw_bits_per_sample}
      if _COUNT_BASELINE.value:
        row['order-2 count model'] = audio_metrics.count_model_bits_per_sample(
            train_classes,
            [classes for classes, (_, _, speaker) in zip(held_out_classes, examples)
             if info.speakers[speaker] == name])
      speaker_rows.append(row)
    if model.local_cond_channels:
      utterances = [(file, waveform, features.of_file(pathlib.Path(file), waveform))
                    for file, waveform, _ in examples[:_NUM_UTTERANCES.value]]
  figures.update(validation_bits_per_sample=score.bits_per_sample,
                 validation_mulaw_bits_per_sample=score.mulaw_bits_per_sample,
                 validation_files=score.num_files, validation_samples=score.num_samples,
                 training_log=log, validation_per_speaker=speaker_rows)
  tables = [markdown_table([{
      'run': os.path.basename(os.path.normpath(workdir)),
      'steps': step,
      'logged training time (min)': log['logged_seconds'] and log['logged_seconds'] / 60.0,
      'last train bits/sample': log.get('train/bits_per_sample'),
      'last validation bits/sample (crops)': log.get('eval/bits_per_sample'),
      'last validation bits per μ-law class (crops)': log.get('eval/mulaw_bits_per_sample'),
      'validation bits/sample (whole held-out files)': score.bits_per_sample,
      'whole held-out files, bits per μ-law class': score.mulaw_bits_per_sample,
      'order-2 count model, same files': baseline,
  }])]
  if speaker_rows:
    tables.append(markdown_table(speaker_rows))

  num_samples = round(_SECONDS.value * sample_rate)
  if model.local_cond_channels:
    rows, originals, wavenet, griffin_lim = vocoder_table(
        model, variables, utterances, sample_rate, mel_config, _GRIFFIN_LIM_ITERS.value,
        _SEED.value, _TEMPERATURE.value, _FLOOR_DB.value)
    means = {key: float(np.mean([row[key] for row in rows])) for key in rows[0] if key != 'file'}
    tables.append(markdown_table(rows + [{'file': 'mean', **means}]))
    figures.update(vocoder=rows, vocoder_mean=means)
    for name, waveform in (('original', originals[0]), ('wavenet', wavenet[0]),
                           ('griffin_lim', griffin_lim[0])):
      write_clip(output_dir, name, waveform, sample_rate, mel_config, _CLIP_SECONDS.value)
  elif model.num_speakers:
    speakers_csv = _SPEAKERS_CSV.value or os.path.join(config.data.wav_dir, 'speakers.csv')
    rows, waveforms = speaker_f0_table(model, variables, info, read_corpus_f0(speakers_csv),
                                       _NUM_CLIPS.value, _SECONDS.value, _SEED.value,
                                       _TEMPERATURE.value)
    tables.append(markdown_table(rows))
    figures['speaker_f0'] = rows
    for index, name in enumerate(info.speakers):
      write_clip(output_dir, f'speaker_{name}', waveforms[index * _NUM_CLIPS.value],
                 sample_rate, mel_config, _CLIP_SECONDS.value)
  else:
    waveforms = generate(model, variables, num_samples, _SEED.value, _TEMPERATURE.value,
                         batch_size=_NUM_CLIPS.value)
    write_clip(output_dir, 'generated', waveforms[0], sample_rate, mel_config,
               _CLIP_SECONDS.value)
    figures['generated_rms'] = [float(np.sqrt(np.mean(np.square(w)))) for w in waveforms]

  for table in tables:
    print('\n'.join(table) + '\n')
  figures['report_seconds'] = time.perf_counter() - began
  print(json.dumps(figures))


if __name__ == '__main__':
  cli.run(main)
