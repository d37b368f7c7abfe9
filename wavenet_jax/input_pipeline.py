"""Input pipeline: per-host slices of deterministic, resumable global batches.

`prepare_dataset(config.data)` prepares the TFDS dataset named by config.data
(`wavenet_jax.datasets`) as ArrayRecord, once per run; the `PreparedDataset` it returns
reads it by index with `tfds.data_source` and makes the training and validation batches
(grain maps the reads over threads and prefetches) and the first crop for clips.
Random access is what makes the batches a pure function of (seed, step): global
batch s holds the examples at positions s * B, ..., s * B + B - 1 of an endless
stream; position p is example permutation(seed, epoch)[p mod N] of epoch p div N,
and its random crop is drawn
from a generator keyed by (seed, epoch, example index). Each of the
process_count hosts computes only its rows [h * B/P, (h + 1) * B/P) of every
global batch, so 1 and N hosts see the same global batches, and resuming at
step k (on any number of hosts) continues exactly where step k - 1 ended.

Each example: optional silence trimming (top_db), a crop of
T = receptive_field + segment_length samples starting at a multiple of
hop_length, optional speed perturbation of training crops (speed_perturbation =
p > 0: T * r source samples resampled to T, r uniform in [1 - p, 1 + p], drawn
from the crop's generator), encoding with the model's codec (μ-law, or 16-bit PCM
for the mixture head; with the model's pre-emphasis, the crop's first sample filtered
against the clip's sample before it). Clips shorter than
T are padded at the end with the codec's silence class and masked out (mask 0),
never dropped. The
log-mel frames of a crop are those of the whole clip (`features.LogMel` with the
clip as context), so frame k covers crop samples [k * hop, (k + 1) * hop); features from
files (config.data.features.source 'files' or 'labels', stored with the audio by
`datasets.audio_folder`) are the stored frames at the crop's position (its start a multiple
of their hop in the file). Either are normalised with statistics computed once over the
training split at prepare time and stored beside the prepared dataset.
"""
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
import dataclasses
import functools
import hashlib
import json
import sys
from typing import Any

from absl import logging
from etils import epath
import grain
import jax
from jax.experimental import multihost_utils
import numpy as np

from wavenet_jax import audio as audio_lib
from wavenet_jax import codecs
from wavenet_jax import datasets
from wavenet_jax import features
from wavenet_jax import mulaw
from wavenet_jax.dataset_info import DatasetInfo

# Mel statistics use at most this many training examples, evenly spaced.
MEL_STATS_MAX_EXAMPLES = 2000
# Crops of the validation split are keyed by this seed, whatever the training seed.
EVAL_SEED = 0
_MEL_STD_FLOOR = 1e-3
# The codec of the paper's softmax head: the default.
MULAW = codecs.Codec('mulaw', mulaw.NUM_CLASSES)
# Source samples read past a speed-perturbed crop, so that its last samples are not
# at the edge of the resampler's filter.
_RESAMPLE_MARGIN = 64


def _mel_statistics_key(data_config: Any, split: str) -> str:
  mel = data_config.mel
  settings = dict(sample_rate=data_config.sample_rate, top_db=data_config.top_db, split=split,
                  n_mels=mel.n_mels, hop_length=mel.hop_length, n_fft=mel.n_fft,
                  fmin=mel.fmin, fmax=mel.fmax)
  return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def _clip_waveform(source: datasets.AudioSource, example: Mapping[str, Any],
                   data_config: Any) -> np.ndarray:
  """float32 [time]: the example's audio at the configured rate, silence-trimmed if top_db > 0
  (a whole clip; a piece of a long recording is not: its crop span counts from its start)."""
  waveform = source.waveform(example, data_config.sample_rate)
  if data_config.top_db > 0 and source.crop_span(example) is None:
    waveform = audio_lib.trim_silence(waveform, data_config.top_db)
  return waveform


def _compute_mel_statistics(source: datasets.AudioSource, examples: Sequence[Mapping[str, Any]],
                            data_config: Any) -> tuple[np.ndarray, np.ndarray]:
  """Per-bin mean and std (float32 [n_mels]) of the log-mel frames of the examples."""
  if not len(examples):
    raise ValueError(f'{source.builder.name}: the training split is empty.')
  count = min(len(examples), MEL_STATS_MAX_EXAMPLES)
  indices = np.linspace(0, len(examples) - 1, count).round().astype(int)
  total = np.zeros(data_config.mel.n_mels, np.float64)
  total_squares = np.zeros(data_config.mel.n_mels, np.float64)
  num_frames = 0
  for index in np.unique(indices):
    waveform = _clip_waveform(source, examples[int(index)], data_config)
    if not len(waveform):
      continue
    mel = audio_lib.log_mel(waveform, data_config.sample_rate, data_config.mel).astype(np.float64)
    total += mel.sum(axis=0)
    total_squares += np.square(mel).sum(axis=0)
    num_frames += len(mel)
  if not num_frames:
    raise ValueError(f'{source.builder.name}: the training clips hold no audio '
                     f'(config.data.top_db={data_config.top_db} trims everything?).')
  mean = total / num_frames
  std = np.sqrt(np.maximum(total_squares / num_frames - np.square(mean), 0.0))
  return mean.astype(np.float32), np.maximum(std, _MEL_STD_FLOOR).astype(np.float32)


def _compute_feature_statistics(source: datasets.AudioSource,
                                examples: Sequence[Mapping[str, Any]],
                                data_config: Any) -> tuple[np.ndarray, np.ndarray]:
  """Per-channel offset and scale (float32 [channels]) of the stored feature frames of the
  examples, as config.data.features.normalisation says: 'standard', their mean and std;
  'min_max', their minimum and max - min; 'standard_non_binary', mean and std but offset 0 and
  scale 1 for a channel that holds only 0 and 1 (one-hots and flags). Scale 1 for a channel
  constant over them (a phone the training set never holds)."""
  if not len(examples):
    raise ValueError(f'{source.builder.name}: the training split is empty.')
  count = min(len(examples), MEL_STATS_MAX_EXAMPLES)
  indices = np.unique(np.linspace(0, len(examples) - 1, count).round().astype(int))
  frames = np.concatenate([np.asarray(examples[int(index)]['features'], np.float64)
                           for index in indices])
  if data_config.features.normalisation == 'min_max':
    offset = frames.min(axis=0)
    scale = frames.max(axis=0) - offset
  else:
    offset, scale = frames.mean(axis=0), frames.std(axis=0)
    if data_config.features.normalisation == 'standard_non_binary':
      binary = np.all((frames == 0) | (frames == 1), axis=0)
      offset, scale = np.where(binary, 0.0, offset), np.where(binary, 1.0, scale)
  return (offset.astype(np.float32),
          np.where(scale < _MEL_STD_FLOOR, 1.0, scale).astype(np.float32))


def _statistics(source: datasets.AudioSource, data_config: Any, kind: str,
                settings: dict[str, Any],
                compute: Callable[..., tuple[np.ndarray, np.ndarray]],
                ) -> tuple[np.ndarray, np.ndarray]:
  """Mean/std of the training split's `kind` ('mel' or 'feature') frames, computed once and
  stored beside the dataset.

  Stored in <data_dir>/<kind>_stats/<dataset full name>/<settings hash>.json: in the
  TFDS data_dir of the dataset, but outside the folder TFDS owns.
  """
  data_dir = epath.Path(data_config.data_dir or source.builder.data_dir_root)
  stats_dir = data_dir / f'{kind}_stats' / source.builder.info.full_name
  key = (_mel_statistics_key(data_config, source.train_split) if kind == 'mel' else
         hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16])
  path = stats_dir / f'{key}.json'
  if not path.exists():
    mean, std = compute(source, source.data_source(source.train_split), data_config)
    stats_dir.mkdir(parents=True, exist_ok=True)
    partial_path = stats_dir / f'{path.name}.{jax.process_index()}.tmp'
    partial_path.write_text(json.dumps({**settings, 'split': source.train_split,
                                        'mean': mean.tolist(), 'std': std.tolist()}))
    partial_path.replace(path)
  stored = json.loads(path.read_text())
  return (np.asarray(stored['mean'], np.float32), np.asarray(stored['std'], np.float32))


def prepare_dataset(data_config: Any) -> 'PreparedDataset':
  """Prepares the configured dataset if needed (idempotent): a run builds it once.

  Prepares the TFDS dataset as ArrayRecord in config.data.data_dir and computes
  the mel normalisation statistics of the training split (stored beside it).
  In a multi-host run every process calls it: process 0 prepares, then the others read
  what it prepared.

  Args:
    data_config: config.data.

  Returns:
    The prepared dataset: its source, its DatasetInfo (to be saved with checkpoints) and
    its batches.
  """
  if jax.process_index() == 0:
    dataset = _prepare(data_config)
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices('prepare_dataset')
  if jax.process_index() != 0:
    dataset = _prepare(data_config)
  return dataset


def _prepare(data_config: Any) -> 'PreparedDataset':
  """`prepare_dataset` on this process."""
  source = datasets.audio_source(data_config)
  source.prepare()
  if jax.process_index() == 0:
    for line in source.describe():  # Files, hours, speakers, what was skipped and why.
      logging.info('%s', line)
  mel_mean, mel_std = _statistics(
      source, data_config, 'mel', {'mel': data_config.mel.to_dict(), 'top_db': data_config.top_db},
      _compute_mel_statistics)
  features_mean = features_std = None
  if features.source(data_config) != features.MEL:
    features_mean, features_std = _statistics(
        source, data_config, 'feature', {'features': data_config.features.to_dict()},
        _compute_feature_statistics)
  info = DatasetInfo(
      sample_rate=data_config.sample_rate,
      speakers=source.speakers,
      mel_mean=mel_mean,
      mel_std=mel_std,
      num_train_examples=len(source.data_source(source.train_split)),
      num_validation_examples=len(source.data_source(source.validation_split)),
      prepared_as=source.builder.info.full_name,
      features_mean=features_mean,
      features_std=features_std,
  )
  return PreparedDataset(data_config, source, info)


class _CropReader:
  """Reads example `index` of a split and makes its crop (audio, mask, speaker, features)."""

  def __init__(self, source: datasets.AudioSource, data_config: Any, info: DatasetInfo,
               split: str, receptive_field: int, with_speaker: bool, with_mel: bool,
               codec: codecs.Codec, speed_perturbation: float = 0.0):
    if speed_perturbation and with_mel:
      raise ValueError('speed_perturbation would move the audio away from its feature frames; '
                       'it cannot be used with with_mel=True.')
    self._config = data_config
    self._speed_perturbation = speed_perturbation
    self._source = source
    self._split = split
    self._examples = self._source.data_source(split)
    self._crop_length = receptive_field + data_config.segment_length
    longest = source.max_crop_length()
    # Crops start at multiples of the features' hop (the log-mel's by default).
    self._hop = features.channels_and_hop(data_config)[1]
    source_length = (round(self._crop_length * (1.0 + speed_perturbation)) + _RESAMPLE_MARGIN
                     + self._hop)  # A start may be up to a hop past the span.
    if longest is not None and source_length > longest:
      raise ValueError(
          f'config.data.segment_length={data_config.segment_length} + the receptive field '
          f'({receptive_field}) = {self._crop_length} samples ({source_length} with speed '
          f'perturbation, margin and a hop) is longer than the {longest} samples that the '
          'pieces of long recordings hold around each crop: use shorter crops.')
    self._with_speaker = with_speaker
    # The embedding row of each of the dataset's speaker ids: info's order is the
    # checkpoint's on resume (`PreparedDataset.resumed_from`), the dataset's otherwise.
    self._speaker_rows = np.array([info.speakers.index(name) for name in source.speakers],
                                  np.int32)
    self._codec = codec
    self._features = features.from_config(data_config, info) if with_mel else None
    # Frames read from the stored features (not computed from the audio).
    self._stored = features.source(data_config) != features.MEL

  def __len__(self) -> int:
    return len(self._examples)

  def crop(self, index: int, rng_key: tuple[int, int, int]) -> dict[str, np.ndarray]:
    """The example's crop; rng_key = (seed, epoch, index) picks its start (and speed)."""
    config, length = self._config, self._crop_length
    hop = self._hop
    example = self._examples[index]
    waveform = _clip_waveform(self._source, example, config)
    span = self._source.crop_span(example)
    first = 0 if span is None else span[0]
    rng = np.random.default_rng(rng_key)
    # Drawn before the start, and only when on: crops without it stay as they were.
    speed = (rng.uniform(1.0 - self._speed_perturbation, 1.0 + self._speed_perturbation)
             if self._speed_perturbation else 1.0)
    source_length = round(length * speed)
    num_starts = (len(waveform) - first - source_length) // hop + 1
    if span is not None:  # A piece: only its own starts (the next piece has the others).
      num_starts = min(num_starts, -(-span[1] // hop))
    start = first + hop * int(rng.integers(num_starts)) if num_starts > 1 else first
    if self._stored:  # A piece's stored frames start `lag` samples before it.
      lag = int(example['features_lag'])
      start -= (start + lag) % hop
    if speed == 1.0:
      segment = waveform[start:start + length]
      previous = waveform[start - 1] if start else 0.0
    else:
      segment = waveform[start:start + source_length + _RESAMPLE_MARGIN]
      segment = audio_lib.change_speed(segment, speed)[:length]
      previous = 0.0  # The resampled crop has no sample before it.
    audio = np.full(length, self._codec.silence_class, np.int32)
    audio[:len(segment)] = self._codec.encode(segment, previous)
    mask = np.zeros(length, np.float32)
    mask[:len(segment)] = 1.0
    crop = {'audio': audio, 'mask': mask}
    if self._with_speaker:
      crop['speaker'] = self._speaker_rows[self._source.speaker_id(example)]
    if self._features is not None and self._stored:
      stored = np.asarray(example['features'])[(start + lag) // hop:][:-(-length // hop)]
      frames = np.pad(stored, ((0, -(-length // hop) - len(stored)), (0, 0)), mode='edge')
      name = example['file']
      crop['mel'] = self._features.normalise(
          frames, name.decode() if isinstance(name, bytes) else str(name))
    elif self._features is not None:
      crop['mel'] = self._features(waveform, start=start, num_samples=length)
    return crop


@functools.lru_cache(maxsize=4)
def _epoch_permutation(seed: int, epoch: int, num_examples: int) -> np.ndarray:
  """int64 [num_examples]: the example order of one training epoch."""
  return np.random.default_rng((seed, epoch)).permutation(num_examples)


def _host_slice(global_batch_size: int, process_index: int | None,
                process_count: int | None) -> tuple[int, int]:
  """(first row, rows) of this host's slice of every global batch."""
  process_index = jax.process_index() if process_index is None else process_index
  process_count = jax.process_count() if process_count is None else process_count
  if global_batch_size % process_count:
    raise ValueError(f'The global batch size ({global_batch_size}) must be a multiple of the '
                     f'number of processes ({process_count}).')
  if not 0 <= process_index < process_count:
    raise ValueError(f'process_index={process_index} is not in [0, {process_count}).')
  rows = global_batch_size // process_count
  return process_index * rows, rows


def _training_example(seed: int, position: int,
                      num_examples: int) -> tuple[int, tuple[int, int, int]]:
  """(example index, crop key (seed, epoch, index)) at `position` of the training stream."""
  epoch, offset = divmod(position, num_examples)
  index = int(_epoch_permutation(seed, epoch, num_examples)[offset])
  return index, (seed, epoch, index)


def _batched(element_fn: Callable[[int], dict[str, np.ndarray]], first_element: int,
             stop_element: int, rows: int, data_config: Any) -> grain.IterDataset:
  """Batches of `rows` elements first_element, ... (read over threads); each pass re-reads."""
  read_options = grain.ReadOptions(num_threads=data_config.read_threads,
                                   prefetch_buffer_size=4 * rows)
  return (grain.MapDataset.range(first_element, stop_element)
          .map(element_fn)
          .to_iter_dataset(read_options)
          .batch(rows, drop_remainder=True))


@dataclasses.dataclass(frozen=True)
class PreparedDataset:
  """A run's dataset, prepared once (`prepare_dataset`) and read from for the whole run.

  Global batch s of `train_batches` is a function of (seed, s) alone, whatever the number of
  processes; resuming = calling again with start_step = the next step.

  Attributes:
    config: config.data (the crop, feature and reading settings).
    source: the prepared dataset: its TFDS builder and how to read its examples.
    info: what the model and checkpoints need to know about it.
  """
  config: Any
  source: datasets.AudioSource
  info: DatasetInfo

  def resumed_from(self, saved: DatasetInfo, *, speaker_conditioned: bool,
                   grow_speakers: bool) -> tuple['PreparedDataset', list[str]]:
    """This dataset read for a checkpoint trained on `saved`: its speakers on their rows.

    See `DatasetInfo.resumed_from` (notices and errors name config.data.wav_dir or .name).
    """
    setting = (f'config.data.wav_dir={self.source.builder.builder_config.wav_dir!r}'
               if isinstance(self.source, datasets.FolderSource)
               else f'config.data.name={self.config.name!r}')
    info, notices = self.info.resumed_from(saved, speaker_conditioned=speaker_conditioned,
                                           grow_speakers=grow_speakers, setting=setting)
    return dataclasses.replace(self, info=info), notices

  def train_batches(self, *, receptive_field: int, global_batch_size: int, seed: int,
                    start_step: int = 0, process_index: int | None = None,
                    process_count: int | None = None, with_speaker: bool = False,
                    with_mel: bool = False, codec: codecs.Codec = MULAW,
                    ) -> Iterator[dict[str, np.ndarray]]:
    """Endless training batches: this host's slice of global batches start_step, start_step + 1, ...

    Args:
      receptive_field: the model's receptive field in samples.
      global_batch_size: rows of the global batch (over all hosts).
      seed: the data seed.
      start_step: the first global batch to yield.
      process_index: this host (default jax.process_index()).
      process_count: number of hosts (default jax.process_count()).
      with_speaker: include 'speaker'.
      with_mel: include 'mel', the local conditioning features (config.data.features: the
        log-mel, or frames stored with the audio).
      codec: of the model's classes, pre-emphasis included (`WaveNet.codec`).

    Yields:
      {'audio': int32 [b, T] classes of `codec`, 'mask': float32 [b, T] (1 = real
      audio, 0 = padding), 'speaker': int32 [b], 'mel': float32 [b, ceil(T / hop),
      channels] normalised}, with b = global_batch_size // process_count and
      T = receptive_field + segment_length.
    """
    first_row, rows = _host_slice(global_batch_size, process_index, process_count)
    reader = self._train_reader(receptive_field, with_speaker, with_mel, codec)
    num_examples = len(reader)

    def element(local_position: int) -> dict[str, np.ndarray]:
      step, row = divmod(local_position, rows)
      index, rng_key = _training_example(seed, step * global_batch_size + first_row + row,
                                         num_examples)
      return reader.crop(index, rng_key)

    return iter(_batched(element, start_step * rows, sys.maxsize, rows, self.config))

  def eval_batches(self, *, receptive_field: int, global_batch_size: int, num_batches: int,
                   process_index: int | None = None, process_count: int | None = None,
                   with_speaker: bool = False, with_mel: bool = False,
                   codec: codecs.Codec = MULAW) -> Iterable[dict[str, np.ndarray]]:
    """num_batches deterministic batches of validation crops (this host's slice of each).

    Global batch j holds validation positions j * B ... j * B + B - 1, position p
    being example p mod N with a crop keyed by (EVAL_SEED, p div N, example), so every
    pass yields the same crops: build it once, iterate it at every evaluation. Arguments
    and batches as in `train_batches`.
    """
    first_row, rows = _host_slice(global_batch_size, process_index, process_count)
    reader = self._eval_reader(receptive_field, with_speaker, with_mel, codec)
    num_examples = len(reader)

    def element(local_position: int) -> dict[str, np.ndarray]:
      step, row = divmod(local_position, rows)
      epoch, index = divmod(step * global_batch_size + first_row + row, num_examples)
      return reader.crop(index, (EVAL_SEED, epoch, index))

    return _batched(element, 0, num_batches * rows, rows, self.config)

  def first_crop(self, *, receptive_field: int, seed: int, with_speaker: bool = False,
                 with_mel: bool = False, codec: codecs.Codec = MULAW
                 ) -> dict[str, np.ndarray]:
    """Row 0 of global batch 0 of the validation split (of training when it has none).

    Read on this process alone; the arrays have a batch axis of 1, keys as in
    `train_batches`.
    """
    if self.info.num_validation_examples:
      crop = self._eval_reader(receptive_field, with_speaker, with_mel, codec).crop(
          0, (EVAL_SEED, 0, 0))
    else:
      reader = self._train_reader(receptive_field, with_speaker, with_mel, codec)
      crop = reader.crop(*_training_example(seed, 0, len(reader)))
    return {key: value[np.newaxis] for key, value in crop.items()}

  def _train_reader(self, receptive_field: int, with_speaker: bool, with_mel: bool,
                    codec: codecs.Codec) -> _CropReader:
    reader = _CropReader(self.source, self.config, self.info, self.source.train_split,
                         receptive_field, with_speaker, with_mel, codec,
                         self.config.speed_perturbation)
    if not len(reader):
      raise ValueError(f'config.data: the training split of {self.config.name!r} is empty.')
    return reader

  def _eval_reader(self, receptive_field: int, with_speaker: bool, with_mel: bool,
                   codec: codecs.Codec) -> _CropReader:
    reader = _CropReader(self.source, self.config, self.info, self.source.validation_split,
                         receptive_field, with_speaker, with_mel, codec)
    if not len(reader):
      raise ValueError(
          f'config.data: the validation split of {self.config.name!r} is empty '
          f'(config.data.validation_fraction={self.config.validation_fraction}).')
    return reader
