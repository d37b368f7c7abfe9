"""TFDS audio datasets: any folder of audio files, the embedded corpus, catalog datasets.

Folders are prepared and read without TensorFlow; catalog datasets (whose TFDS Audio
feature decodes with TensorFlow) need the `tensorflow` extra.

`audio_source(config.data)` returns the TFDS builder of the configured dataset
(prepared as ArrayRecord so that examples can be read by index) and how to read
waveforms and speakers from its examples: an `AudioSource`, whatever the kind of dataset.
"""
import dataclasses
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

from absl import logging
from etils import epath
import numpy as np
import tensorflow_datasets as tfds

from wavenet_jax import audio as audio_lib
from wavenet_jax import features as features_lib
from wavenet_jax import linguistic
from wavenet_jax import storage
from wavenet_jax.datasets import audio_folder
from wavenet_jax.datasets import catalog

# The corpus shipped inside the package (config.data.wav_dir = '').
EMBEDDED_CORPUS_DIR = pathlib.Path(__file__).resolve().parent.parent / 'data' / 'speech'
FILE_FORMAT = 'array_record'
# Earlier AudioFolder versions, which this version does not read, and what they lack.
_OLD_VERSIONS = {
    '1.0.0': 'stored in a format that needs TensorFlow to read',
    '2.0.0': 'whose long recordings are not stored as pieces',
}


@dataclasses.dataclass(frozen=True)
class AudioSource:
  """A TFDS dataset of audio and how to read it (a catalog dataset; `FolderSource` a folder).

  Attributes:
    builder: the TFDS builder (its data_dir is where it is prepared).
    audio_key: example feature holding the waveform.
    speaker_key: '/'-separated path of the speaker ClassLabel, or None (one
      speaker).
    stored_sample_rate: sample rate of the stored audio in Hz.
    train_split: TFDS split (slice) read for training.
    validation_split: TFDS split (slice) read for evaluation.
    speakers: speaker names; index = speaker id.
  """
  builder: tfds.core.DatasetBuilder
  audio_key: str
  speaker_key: str | None
  stored_sample_rate: int
  train_split: str
  validation_split: str
  speakers: tuple[str, ...]

  def prepare(self) -> None:
    """Prepares the dataset as ArrayRecord in the builder's data_dir (no-op if done)."""
    try:
      self.builder.download_and_prepare(file_format=FILE_FORMAT)
    except (OSError, tfds.core.download.DownloadError) as error:
      raise RuntimeError(
          f'TFDS could not prepare {self.builder.name} in {self.builder.data_dir}: {error}'
      ) from error
    file_format = self.builder.info.file_format
    if file_format is not None and file_format.value != FILE_FORMAT:
      raise ValueError(
          f'{self.builder.data_dir} holds {self.builder.name} as {file_format.value}; the input '
          f'pipeline reads examples by index and needs {FILE_FORMAT}: convert it with '
          f'`tfds convert_format --dataset_dir={self.builder.data_dir} --out_file_format='
          f'{FILE_FORMAT}` or prepare it in another data_dir.')

  def describe(self) -> list[str]:
    """Lines saying what the prepared dataset holds: examples per split, speakers."""
    lines = [f'Dataset {self.builder.info.full_name} prepared in {self.builder.data_dir}']
    for split in (self.train_split, self.validation_split):
      lines.append(f'  {split}: {len(self.data_source(split))} examples')
    lines.append(f'  speakers ({len(self.speakers)}): {", ".join(self.speakers)}')
    return lines

  def data_source(self, split: str) -> Sequence[Mapping[str, Any]]:
    """Random-access examples of a prepared split (its length is the number of examples)."""
    return self.builder.as_data_source(split)

  def waveform(self, example: Mapping[str, Any], sample_rate: int) -> np.ndarray:
    """The example's audio as float32 [time] in [-1, 1] at sample_rate Hz (mono)."""
    stored = np.asarray(example[self.audio_key])
    if stored.ndim == 2:
      stored = stored.mean(axis=-1)
    if stored.dtype == np.int16:
      waveform = audio_lib.pcm16_to_float(stored)
    else:
      waveform = stored.astype(np.float32)
    return audio_lib.resample(waveform, self.stored_sample_rate, sample_rate)

  def crop_span(self, example: Mapping[str, Any]) -> tuple[int, int] | None:
    """(first sample, number of samples) that crops of a piece of a long recording start
    at, or None for a whole clip (crops start anywhere in it)."""
    del example
    return None

  def max_crop_length(self) -> int | None:
    """The longest crop, in samples, that pieces of long recordings hold (None: no limit)."""
    return None

  def speaker_id(self, example: Mapping[str, Any]) -> int:
    """The example's speaker id (0 when the dataset has no speaker feature)."""
    if self.speaker_key is None:
      return 0
    value = example
    for key in self.speaker_key.split('/'):
      value = value[key]
    return int(value)


class FolderSource(AudioSource):
  """A folder of audio files (builder: an `audio_folder.AudioFolder`), with what it skipped."""

  def prepare(self) -> None:
    """As `AudioSource.prepare`, with warnings on older preparations, skipped files, problems."""
    _note_old_versions(epath.Path(self.builder.data_dir))
    super().prepare()
    metadata = self.builder.info.metadata
    for summary in (audio_folder.skipped_summary(metadata),
                    audio_folder.fitted_summary(metadata),
                    audio_folder.problems_summary(metadata)):
      if summary:
        logging.warning(summary)

  def describe(self) -> list[str]:
    """As `AudioSource.describe`, with the files found and hours prepared, and what was not used.

    That is: its metadata.csv problems (rows not used or overridden), skipped files, feature
    files fitted to their audio, clipped, unlisted and ignored files.
    """
    lines = super().describe()
    metadata = self.builder.info.metadata
    hours = {split: samples / self.stored_sample_rate / 3600
             for split, samples in sorted(metadata['num_samples'].items())}
    listing = self.builder.builder_config.listing
    lines.insert(1, f'  audio files found: {len(listing.entries) + len(listing.undecodable)} '
                    f'({sum(hours.values()):.3f} hours prepared: '
                    + ', '.join(f'{split} {h:.3f}' for split, h in hours.items()) + ')')
    lines.append(f'  skipped: {len(audio_folder.skipped_files(metadata))}')
    lines.append('  ' + (audio_folder.skipped_summary(metadata) or 'No file skipped.'))
    for summary in (audio_folder.fitted_summary(metadata),
                    audio_folder.problems_summary(metadata)):
      if summary:
        lines.append(f'  {summary}')
    if metadata['clipped']:
      lines.append(f'  clipped to [-1, 1] when stored as int16 ({len(metadata["clipped"])}): '
                   + ', '.join(metadata['clipped']))
    if metadata['pieced']:
      lines.append(f'  long recordings stored as pieces of {audio_folder.PIECE_SECONDS} s '
                   f'({len(metadata["pieced"])}): ' + ', '.join(metadata['pieced']))
    if metadata['unlisted']:
      lines.append(f'  audio files without a metadata.csv row (speaker = folder name): '
                   f'{metadata["unlisted"]}')
    if metadata['ignored']:
      lines.append(f'  ignored (not .wav/.flac/.ogg) ({len(metadata["ignored"])}): '
                   + ', '.join(metadata['ignored']))
    return lines

  def crop_span(self, example: Mapping[str, Any]) -> tuple[int, int] | None:
    """As `AudioSource.crop_span`: a piece's ('piece_offset', 'piece_starts')."""
    starts = int(example['piece_starts'])
    return (int(example['piece_offset']), starts) if starts else None

  def max_crop_length(self) -> int | None:
    """As `AudioSource.max_crop_length`: the pieces' margin, if the folder has long files."""
    if not self.builder.info.metadata['pieced']:
      return None
    return round(audio_folder.PIECE_MARGIN_SECONDS * self.stored_sample_rate)

  def data_source(self, split: str) -> Sequence[Mapping[str, Any]]:
    """As `AudioSource.data_source`; a folder without validation files has none: empty."""
    if split not in self.builder.info.splits:
      return ()
    return super().data_source(split)


def _note_old_versions(dataset_dir: epath.Path) -> None:
  """Warns about versions of this folder prepared in a format this version does not read."""
  if not dataset_dir.parent.exists():
    return
  for version in sorted(path.name for path in dataset_dir.parent.iterdir()):
    if version in _OLD_VERSIONS:
      logging.warning(
          '%s holds version %s of this folder, %s; version %s is prepared beside it. Delete '
          'the old folder to free its space.', dataset_dir.parent, version,
          _OLD_VERSIONS[version], audio_folder.AudioFolder.VERSION)


def _require_tensorflow(name: str, flag_prefix: str) -> None:
  """Raises ValueError in one line when TensorFlow, which catalog datasets need, is missing."""
  try:
    import tensorflow  # pylint: disable=g-import-not-at-top,import-outside-toplevel,unused-import
  except ImportError as error:
    raise ValueError(
        f'{flag_prefix}name={name!r} is a TFDS catalog dataset, whose audio feature needs '
        f"TensorFlow to prepare and read ({error}): pip install 'wavenet-jax[tensorflow]', or "
        f"use {flag_prefix}name='audio_folder' (a folder of audio files, no TensorFlow)."
    ) from None


def _class_label_names(features: tfds.features.FeaturesDict, key_path: str) -> tuple[str, ...]:
  feature = features
  for key in key_path.split('/'):
    feature = feature[key]
  return tuple(feature.names)


def _validation_percent(validation_fraction: float, flag_prefix: str) -> int:
  percent = round(100 * validation_fraction)
  if not 0 <= percent < 100:
    raise ValueError(
        f'{flag_prefix}validation_fraction={validation_fraction} must be in [0, 1).')
  return percent


def feature_files(data_config: Any) -> audio_folder.FeatureFiles | None:
  """The feature files config.data.features describes; None for the log-mel (source 'mel').

  Raises:
    ValueError: naming the key, for an unknown source, a bad channel count or hop, or a
      features dir that is not a folder.
  """
  source = features_lib.source(data_config)
  if source == features_lib.MEL:
    return None
  channels, hop_length = features_lib.channels_and_hop(data_config)
  section = data_config.features
  if source == features_lib.LABELS and not audio_lib.librosa_available():
    raise ValueError("config.data.features.source='labels' takes log-F0 from librosa's pYIN: "
                     "pip install 'wavenet-jax[librosa]'.")
  if source == features_lib.FILES and section.dir and not pathlib.Path(section.dir).is_dir():
    raise ValueError(f'config.data.features.dir={section.dir!r} is not a folder.')
  return audio_folder.FeatureFiles(
      source=source, hop_length=hop_length, channels=channels,
      dir=str(pathlib.Path(section.dir).resolve()) if source == features_lib.FILES and section.dir
      else '',
      phones=linguistic.phone_set(section.phones) if source == features_lib.LABELS else ())


def audio_source(data_config: Any, flag_prefix: str = 'config.data.') -> AudioSource:
  """The dataset named by config.data (not prepared yet: call `.prepare()`).

  A folder (config.data.name = 'audio_folder') is a `FolderSource`, a catalog dataset an
  `AudioSource`; callers read both through `AudioSource`'s methods.

  Args:
    data_config: config.data (name, wav_dir, data_dir, sample_rate,
      validation_fraction).
    flag_prefix: what errors put before a setting's name, to name what the user typed:
      'config.data.' for training, '--' for the prepare CLI's flags.

  Raises:
    ValueError: naming the flag, for an unknown dataset name, a bad wav_dir or
      validation_fraction.
  """
  storage.check_local(data_config.data_dir, f'{flag_prefix}data_dir')
  data_dir = data_config.data_dir or None
  if data_config.name == 'audio_folder':
    wav_dir = data_config.wav_dir or str(EMBEDDED_CORPUS_DIR)
    _validation_percent(data_config.validation_fraction, flag_prefix)
    config = audio_folder.folder_config(wav_dir, data_config.sample_rate,
                                        data_config.validation_fraction,
                                        setting=f'{flag_prefix}wav_dir',
                                        features=feature_files(data_config))
    builder = audio_folder.AudioFolder(config=config, data_dir=data_dir)
    return FolderSource(
        builder=builder, audio_key='audio', speaker_key='speaker',
        stored_sample_rate=data_config.sample_rate, train_split=audio_folder.TRAIN,
        validation_split=audio_folder.VALIDATION,
        speakers=_class_label_names(builder.info.features, 'speaker'))
  if data_config.name not in catalog.CATALOG:
    raise ValueError(
        f'{flag_prefix}name={data_config.name!r} is not a known dataset: use "audio_folder" '
        f'(with {flag_prefix}wav_dir) or one of {sorted(catalog.CATALOG)}.')
  if feature_files(data_config) is not None:
    raise ValueError(f'config.data.features.source={data_config.features.source!r} reads '
                     "features from files beside the audio: it needs config.data.name="
                     "'audio_folder'.")
  entry = catalog.CATALOG[data_config.name]
  _require_tensorflow(data_config.name, flag_prefix)
  builder = tfds.builder(entry.tfds_name, data_dir=data_dir, file_format=FILE_FORMAT)
  if entry.validation_split is None:
    train_percent = 100 - _validation_percent(data_config.validation_fraction, flag_prefix)
    train_split, validation_split = f'train[:{train_percent}%]', f'train[{train_percent}%:]'
  else:
    train_split, validation_split = 'train', entry.validation_split
  if entry.speaker_key is None:
    speakers = (data_config.name,)
  else:
    speakers = _class_label_names(builder.info.features, entry.speaker_key)
  return AudioSource(
      builder=builder, audio_key=entry.audio_key, speaker_key=entry.speaker_key,
      stored_sample_rate=entry.sample_rate, train_split=train_split,
      validation_split=validation_split, speakers=speakers)
