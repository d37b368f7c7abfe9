"""TFDS builder for any folder of audio files (config.data.name = 'audio_folder').

The folder is listed by `file_listing.scan_folder` (audio files, speakers and
texts from an optional metadata.csv, whose malformed rows it reports).

Each example: 'audio' int16 [time] mono at the configured sample rate (a TFDS
Tensor, which `as_data_source` decodes with numpy alone; the rate is in the
dataset's metadata), 'speaker' ClassLabel (names kept), 'text', 'file' (path
relative to wav_dir), 'piece_offset' and 'piece_starts' (int64, see below); with features from
files (a `FeatureFiles` setting, config.data.features.source 'files' or 'labels'), 'features'
float32 [frames, channels] and 'features_lag' (int64): frame j of the example covers its
samples [j * hop - lag, (j + 1) * hop - lag), i.e. the stored frames are the file's from the
one holding the example's first sample (lag = 0 for a whole file).

Long recordings (over LONG_SECONDS) are decoded and resampled as a stream and stored as
pieces, so that neither preparing nor reading one holds more than a piece in memory:
piece k holds samples [k S - M, (k + 1) S + M) of the recording (S = PIECE_SECONDS,
M = PIECE_MARGIN_SECONDS; the first starts at 0, the last runs to the end), and its crops
start at the S samples [k S, (k + 1) S) alone ('piece_offset' = the first of them within
the piece, 'piece_starts' = their number; the last piece's run to its end). Every start of
the recording thus belongs to one piece, each piece is an example of equal weight, and a
crop of up to M samples lies inside its piece with context before it. A whole file has
piece_offset = piece_starts = 0. The split is by file, before cutting.
Preparation decodes every file twice: a first pass (threads) checks that it is
usable and measures it, so that bad files are known before any split is written
(TFDS cannot write an empty split); the second pass writes the usable ones.
Split: a usable file goes to 'validation' when the hash of its relative path, as
a fraction of 2^64, is below validation_fraction (if that leaves validation empty
and there are two or more usable files, the file with the smallest hash goes
there), to 'train' otherwise. With no validation file (validation_fraction = 0
or a single file) the dataset has only a 'train' split.

Bad input, and what happens to it (all listed in the prepare report, stored in
the dataset's metadata and printed by `python -m wavenet_jax.datasets.prepare`):
  stereo / other channel counts   fixed: mixed down to mono (mean of channels)
  other sample rate               fixed: resampled with soxr
  samples beyond [-1, 1]          fixed: clipped when stored as int16 (counted)
  truncated file                  whatever libsndfile can decode is kept, else skipped
  corrupt / non-audio / empty     skipped (path and reason)
  NaN or inf samples              skipped (path and reason)
  file name not valid UTF-8       skipped (its bytes shown, b'bad\\xff.wav', and reason)
  metadata row, file missing      skipped (path and reason)
  metadata row, file outside      skipped (path and reason: outside the folder)
  malformed metadata row          not used, reported with its line number: a stray quote,
                                  more fields than the header, no file name, not an
                                  audio file; the rows after it are still read
  metadata rows for one file      the last one used, reported with the line numbers
  metadata.csv with a UTF-8 BOM   read as any other (spreadsheet exports)
  shorter than one training crop  kept: the input pipeline pads and masks it
  longer than LONG_SECONDS        stored as pieces (above); not silence-trimmed (top_db)
  no usable file at all           error naming the folder, listing every file and why
  features file missing           skipped (path and reason)
  features off by > 2 frames      skipped (path and reason: frames found and needed); within
                                  features.FRAME_TOLERANCE frames (the usual GTA mismatch)
                                  cropped or padded with the last frame to ceil(samples / hop)
                                  (path and how: frames found and needed)
  features holding NaN or inf     skipped (path and reason)
  features with other channels    ValueError naming the file and config.data.features.channels
Other files (not .wav/.flac/.ogg, not metadata.csv) are counted as ignored.

The builder config name is derived from the folder path, the sample rate, the
validation fraction and the file listing (names, sizes, modification times, speakers,
texts, missing files, metadata problems), so distinct folders or settings never collide
in one data_dir, and a changed folder, file or metadata.csv is prepared again.
"""
from collections.abc import Iterable, Iterator
from concurrent import futures
import dataclasses
import hashlib
import os
import pathlib
import re

import numpy as np
import soundfile
import soxr
import tensorflow_datasets as tfds

from wavenet_jax import audio as audio_lib
from wavenet_jax import features as features_lib
from wavenet_jax import file_listing
from wavenet_jax import linguistic

TRAIN = 'train'
VALIDATION = 'validation'
# Pieces of long recordings: crops start in PIECE_SECONDS of each, which holds
# PIECE_MARGIN_SECONDS more on either side (the longest crop, and context before it).
PIECE_SECONDS = 30
PIECE_MARGIN_SECONDS = 5
# Files longer than this are streamed and cut into pieces (shorter ones: one example, decoded
# whole, as before pieces existed); about two pieces, so that the last is never tiny.
LONG_SECONDS = 2 * PIECE_SECONDS + PIECE_MARGIN_SECONDS
# Seconds of the file decoded at a time when streaming.
_BLOCK_SECONDS = 10


@dataclasses.dataclass(eq=False)
class AudioFolderConfig(tfds.core.BuilderConfig):
  """Builder config of one (folder, sample rate, split, features) setting."""
  wav_dir: str = ''
  sample_rate: int = 16000
  validation_fraction: float = 0.05
  listing: file_listing.FolderListing | None = dataclasses.field(default=None, repr=False)
  features: 'FeatureFiles | None' = None


@dataclasses.dataclass(frozen=True)
class FeatureFiles:
  """Where each audio file's feature frames come from (config.data.features, not 'mel').

  Attributes:
    source: 'files' (`<stem>.npy` arrays) or 'labels' (made from `<stem>.lab` + the audio by
      `linguistic.write_features` when the folder is prepared, once).
    hop_length: samples per frame.
    channels: the arrays' channels.
    dir: folder mirroring wav_dir's paths that holds the arrays ('' = beside the audio); for
      'labels', where they are made (`AudioFolder` sets it under its data_dir).
    phones: the phone set of 'labels' (`linguistic.phone_set`); () for 'files'.
  """
  source: str
  hop_length: int
  channels: int
  dir: str = ''
  phones: tuple[str, ...] = ()

  def array_path(self, wav_dir: str, file: str) -> pathlib.Path:
    """The .npy file of the audio file `file` (relative to wav_dir)."""
    return (pathlib.Path(self.dir or wav_dir) / file).with_suffix('.npy')

  def input_path(self, wav_dir: str, file: str) -> pathlib.Path:
    """What the features of `file` are read or made from: its .npy, or its .lab."""
    if self.source == 'labels':
      return linguistic.lab_path(pathlib.Path(wav_dir) / file)
    return self.array_path(wav_dir, file)


def split_fraction(relative_path: str) -> float:
  """Deterministic value in [0, 1) from the file's relative path (sha256)."""
  digest = hashlib.sha256(relative_path.encode('utf-8')).digest()
  return int.from_bytes(digest[:8], 'big') / 2.0**64


def assign_splits(relative_paths: list[str], validation_fraction: float) -> dict[str, str]:
  """Split (TRAIN or VALIDATION) of each usable file, by hash of its relative path."""
  fractions = [split_fraction(path) for path in relative_paths]
  in_validation = [fraction < validation_fraction for fraction in fractions]
  if validation_fraction > 0 and not any(in_validation) and len(relative_paths) >= 2:
    in_validation[int(np.argmin(fractions))] = True
  return {path: VALIDATION if validation else TRAIN
          for path, validation in zip(relative_paths, in_validation)}


def folder_config(wav_dir: str, sample_rate: int, validation_fraction: float,
                  setting: str = 'config.data.wav_dir',
                  features: FeatureFiles | None = None) -> AudioFolderConfig:
  """The builder config of a folder + settings; its name keys the prepared data.

  `setting` is the flag or config key wav_dir was given with, named in errors; `features`
  the feature files stored with the audio (None: none, the folder's name is as before them).
  """
  root = pathlib.Path(wav_dir).expanduser().resolve()
  listing = file_listing.scan_folder(wav_dir, setting)
  fingerprint = hashlib.sha256()
  fingerprint.update(f'{root}|{sample_rate}|{validation_fraction!r}'.encode())
  for entry in listing.entries:
    # Size and modification time (ns): a file rewritten in place with other audio of the same
    # length changes its mtime. One stat per file, no read: 0.05 s per 10,000 files.
    stat = (root / entry.file).stat()
    fingerprint.update(f'|{entry.file}|{stat.st_size}|{stat.st_mtime_ns}|{entry.speaker}|'
                       f'{entry.text}'.encode())
  # What the report shows: the stored metadata must not be that of another listing.
  for line in (*listing.missing, *listing.undecodable, *listing.problems):
    fingerprint.update(f'|{line}'.encode())
  for line in listing.outside:
    fingerprint.update(f'|outside:{line}'.encode())
  if features is not None:
    fingerprint.update(f'|features:{features!r}'.encode())
    for entry in listing.entries:
      path = features.input_path(wav_dir, entry.file)
      stat = path.stat() if path.is_file() else None
      fingerprint.update(f'|{path}|{stat and stat.st_size}|{stat and stat.st_mtime_ns}'.encode())
  slug = re.sub(r'[^a-z0-9]+', '_', root.name.lower()).strip('_') or 'root'
  return AudioFolderConfig(
      name=f'{slug}_{sample_rate}hz_{fingerprint.hexdigest()[:12]}',
      description=f'Audio files under {root} at {sample_rate} Hz.',
      wav_dir=str(root), sample_rate=sample_rate,
      validation_fraction=validation_fraction, listing=listing, features=features)


def _is_long(path: pathlib.Path) -> bool:
  """Whether the file lasts over LONG_SECONDS (False if its header cannot be read)."""
  try:
    info = soundfile.info(os.fspath(path))
  except (soundfile.LibsndfileError, RuntimeError, OSError, ValueError):
    return False  # Decoded whole, which says why it is unusable.
  return info.frames > LONG_SECONDS * info.samplerate


def _stream(path: pathlib.Path, sample_rate: int) -> Iterator[np.ndarray]:
  """float32 [time] mono blocks of the file at sample_rate (soxr's stream resampler).

  Raises:
    audio_lib.AudioFileError: as `audio_lib.load_audio`, for a file it cannot decode, that
      holds no samples or NaN/inf ones.
  """
  try:
    sound = soundfile.SoundFile(os.fspath(path))
  except (soundfile.LibsndfileError, RuntimeError, OSError, ValueError) as error:
    raise audio_lib.AudioFileError(path, f'cannot decode audio ({error})') from error
  with sound:
    resampler = (None if sound.samplerate == sample_rate else soxr.ResampleStream(
        sound.samplerate, sample_rate, 1, dtype='float32', quality=audio_lib.RESAMPLE_QUALITY))
    block_frames, total = _BLOCK_SECONDS * sound.samplerate, 0
    while True:
      try:
        block = sound.read(block_frames, dtype='float32', always_2d=True)
      except (soundfile.LibsndfileError, RuntimeError) as error:  # Truncated: keep what decoded.
        if not total:
          raise audio_lib.AudioFileError(path, f'cannot decode audio ({error})') from error
        block = np.zeros((0, sound.channels), np.float32)
      if not np.all(np.isfinite(block)):
        raise audio_lib.AudioFileError(path, 'the audio holds NaN or infinite samples')
      total += len(block)
      last = len(block) < block_frames
      if not total and last:
        raise audio_lib.AudioFileError(path, 'the file holds no audio samples')
      mono = block.mean(axis=1, dtype=np.float32)
      yield mono if resampler is None else resampler.resample_chunk(mono, last=last)
      if last:
        return


def pieces(blocks: Iterable[np.ndarray],
           sample_rate: int) -> Iterator[tuple[np.ndarray, int, int]]:
  """(audio float32 [time], piece_offset, piece_starts) of each piece of a recording.

  Holds at most two pieces and a block: piece k is given out once the blocks reach
  (k + 2) S + M, so that the last piece holds whatever follows (between S and 2 S starts).
  """
  stride, margin = round(PIECE_SECONDS * sample_rate), round(PIECE_MARGIN_SECONDS * sample_rate)
  buffer, buffer_start, k = np.zeros(0, np.float32), 0, 0
  for block in blocks:
    buffer = np.concatenate([buffer, block])
    while buffer_start + len(buffer) >= (k + 2) * stride + margin:
      first = max(0, k * stride - margin)
      yield (buffer[first - buffer_start:(k + 1) * stride + margin - buffer_start],
             k * stride - first, stride)
      k += 1
      buffer = buffer[k * stride - margin - buffer_start:]
      buffer_start = k * stride - margin
  first = max(0, k * stride - margin)
  last = buffer[first - buffer_start:]
  yield last, k * stride - first, len(last) - (k * stride - first)


class AudioFolder(tfds.core.GeneratorBasedBuilder):
  """Any folder of audio files; build with `config=folder_config(...)`."""
  VERSION = tfds.core.Version('3.0.0')
  RELEASE_NOTES = {
      '1.0.0': 'Mono int16 audio, speaker ClassLabel, text, hash split.',
      '2.0.0': "'audio' an int16 Tensor (decoded with numpy, no TensorFlow); the sample rate "
               "in the metadata.",
      '3.0.0': 'Long recordings stored as pieces (piece_offset, piece_starts).',
  }
  BUILDER_CONFIGS = []

  def _info(self) -> tfds.core.DatasetInfo:
    config = self.builder_config
    speakers = sorted({entry.speaker for entry in config.listing.entries})
    features = {
        'audio': tfds.features.Tensor(shape=(None,), dtype=np.int16),
        'speaker': tfds.features.ClassLabel(names=speakers),
        'text': tfds.features.Text(),
        'file': tfds.features.Text(),
        'piece_offset': tfds.features.Scalar(dtype=np.int64),
        'piece_starts': tfds.features.Scalar(dtype=np.int64),
    }
    if config.features is not None:
      features['features'] = tfds.features.Tensor(shape=(None, config.features.channels),
                                                   dtype=np.float32)
      features['features_lag'] = tfds.features.Scalar(dtype=np.int64)
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict(features),
        metadata=tfds.core.MetadataDict(
            wav_dir=config.wav_dir, sample_rate=config.sample_rate, skipped={}, fitted={},
            clipped=[], num_samples={}, pieced=[], missing=list(config.listing.missing),
            outside=list(config.listing.outside),
            undecodable=list(config.listing.undecodable), problems=list(config.listing.problems),
            ignored=list(config.listing.ignored), unlisted=config.listing.unlisted),
    )

  def _blocks(self, entry: file_listing.AudioFileEntry) -> Iterator[np.ndarray]:
    """float32 [time] mono audio of the file at the configured rate: one block for a file
    up to LONG_SECONDS, a stream of blocks for a longer one (AudioFileError if unusable)."""
    config = self.builder_config
    path = pathlib.Path(config.wav_dir) / entry.file
    if _is_long(path):
      return _stream(path, config.sample_rate)
    return iter([audio_lib.load_audio(path, config.sample_rate)])

  def _feature_files(self) -> FeatureFiles | None:
    """The config's feature files; those made from labels live under this data_dir."""
    features = self.builder_config.features
    if features is None or features.source != 'labels':
      return features
    return dataclasses.replace(features, dir=os.fspath(
        pathlib.Path(self.data_dir_root) / 'linguistic_features' / self.builder_config.name))

  def _frames(self, entry: file_listing.AudioFileEntry,
              num_samples: int) -> tuple[np.ndarray, int] | str:
    """(float32 [ceil(num_samples / hop), channels]: the file's feature frames (made first from
    its labels if need be, fitted within FRAME_TOLERANCE), the frames the file holds), else
    the reason it is skipped.

    Raises:
      ValueError: in one line naming the file, for arrays with another channel count.
    """
    config, features = self.builder_config, self._feature_files()
    path = features.array_path(config.wav_dir, entry.file)
    if features.source == 'labels' and not path.exists():
      if not linguistic.lab_path(pathlib.Path(config.wav_dir) / entry.file).is_file():
        return f'no labels file {linguistic.lab_path(entry.file)}'
      try:
        linguistic.write_features(pathlib.Path(config.wav_dir) / entry.file, path,
                                  config.sample_rate, features.hop_length, features.phones)
      except (ValueError, audio_lib.AudioFileError) as error:
        return f'its features cannot be made ({error})'
    if not path.is_file():
      return f'no features file {path}'
    try:
      frames = np.load(path, mmap_mode='r')
    except (OSError, ValueError) as error:
      return f'features file {path} does not load ({error})'
    if frames.ndim != 2 or frames.shape[1] != features.channels:
      raise ValueError(f'{path}: features of shape {frames.shape}, but '
                       f'config.data.features.channels={features.channels} ([frames, '
                       f'{features.channels}] float32 arrays).')
    fitted = features_lib.fit_frames(frames, num_samples, features.hop_length,
                                     f'features file {path}')
    return fitted if isinstance(fitted, str) else (fitted, len(frames))

  def _inspect(self, entry: file_listing.AudioFileEntry) -> tuple[int, bool, str | None] | str:
    """(samples, clipped, how its feature frames were fitted to them or None) of a usable file,
    else the reason it is skipped."""
    samples, peak = 0, 0.0
    try:
      for block in self._blocks(entry):
        samples += len(block)
        peak = max(peak, float(np.max(np.abs(block), initial=0.0)))
    except audio_lib.AudioFileError as error:
      return error.reason
    fitted = None
    if self.builder_config.features is not None:
      frames = self._frames(entry, samples)
      if isinstance(frames, str):
        return frames
      fitted = _fitted_note(frames[1], len(frames[0]))
    return samples, peak > 1.0, fitted

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    del dl_manager
    config = self.builder_config
    metadata = self.info.metadata
    with futures.ThreadPoolExecutor(os.cpu_count()) as pool:
      inspections = list(pool.map(self._inspect, config.listing.entries))
    usable, num_samples = {}, {}
    for entry, inspection in zip(config.listing.entries, inspections):
      if isinstance(inspection, str):
        metadata['skipped'][entry.file] = inspection
        continue
      usable[entry.file] = entry
      num_samples[entry.file], clipped, fitted = inspection
      if fitted:
        metadata['fitted'][entry.file] = fitted
      if _is_long(pathlib.Path(config.wav_dir) / entry.file):
        metadata['pieced'].append(entry.file)
      if clipped:
        metadata['clipped'].append(entry.file)
    if not usable:
      raise ValueError(f'No usable audio file in {config.wav_dir}. {skipped_summary(metadata)}')
    self._file_samples = num_samples  # Where the pieces' feature frames start and end.
    split_of = assign_splits(list(usable), config.validation_fraction)
    generators = {}
    for split in (TRAIN, VALIDATION):
      files = [file for file in usable if split_of[file] == split]
      if files:
        metadata['num_samples'][split] = sum(num_samples[file] for file in files)
        generators[split] = self._generate_examples([usable[file] for file in files])
    return generators

  def _generate_examples(self, entries: list[file_listing.AudioFileEntry]):
    config = self.builder_config
    stride = round(PIECE_SECONDS * config.sample_rate)
    margin = round(PIECE_MARGIN_SECONDS * config.sample_rate)
    for entry in entries:
      example = {'speaker': entry.speaker, 'text': entry.text, 'file': entry.file}
      blocks = self._blocks(entry)
      if entry.file not in self.info.metadata['pieced']:
        audio = next(blocks)
        yield entry.file, {**example, 'audio': audio_lib.float_to_pcm16(audio),
                           'piece_offset': 0, 'piece_starts': 0,
                           **self._piece_frames(entry, len(audio), 0, len(audio))}
        continue
      for k, (audio, offset, starts) in enumerate(pieces(blocks, config.sample_rate)):
        first = max(0, k * stride - margin)  # The piece's first sample in the recording.
        yield f'{entry.file}#{k:06d}', {
            **example, 'audio': audio_lib.float_to_pcm16(audio), 'piece_offset': offset,
            'piece_starts': starts,
            **self._piece_frames(entry, self._file_samples[entry.file],
                                 first, len(audio))}

  def _piece_frames(self, entry: file_listing.AudioFileEntry, num_samples: int, first: int,
                    length: int) -> dict[str, np.ndarray | int]:
    """{'features', 'features_lag'} of samples [first, first + length) of a file of
    num_samples samples ({} without features): the frames from the one holding `first`."""
    features = self.builder_config.features
    if features is None:
      return {}
    frames = self._frames(entry, num_samples)[0]
    hop = features.hop_length
    return {'features': frames[first // hop:-(-(first + length) // hop)],
            'features_lag': first % hop}


def _fitted_note(found: int, needed: int) -> str | None:
  """How a file's `found` feature frames were fitted to the `needed` of its audio (None: as
  they were)."""
  if found > needed:
    return f'{found} frames for {needed}: the last {found - needed} dropped'
  if found < needed:
    return f'{found} frames for {needed}: the last repeated {needed - found} time(s)'
  return None


def fitted_summary(metadata: dict) -> str | None:
  """One line listing every file whose features were cropped or padded (None when none was)."""
  # .get: metadata stored by versions before 'fitted'.
  fitted = metadata.get('fitted', {})
  if not fitted:
    return None
  return (f'Features of {len(fitted)} file(s) of {metadata["wav_dir"]} fitted to their audio '
          f'(within {features_lib.FRAME_TOLERANCE} frames): '
          + '; '.join(f'{path} ({note})' for path, note in sorted(fitted.items())))


def skipped_files(metadata: dict) -> dict[str, str]:
  """Every skipped file of a prepared folder -> why: undecodable audio or name, missing or
  outside the folder."""
  # .get: metadata stored by versions before 'undecodable' or 'outside'.
  return {**{name: file_listing.UNDECODABLE_NAME_REASON
             for name in metadata.get('undecodable', [])},
          **{listed: file_listing.MISSING_REASON for listed in metadata['missing']},
          **{listed: file_listing.OUTSIDE_REASON for listed in metadata.get('outside', [])},
          **metadata['skipped']}


def skipped_summary(metadata: dict) -> str | None:
  """One line listing every skipped file and why (None when nothing was skipped)."""
  return file_listing.skipped_line(metadata['wav_dir'], skipped_files(metadata))


def problems_summary(metadata: dict) -> str | None:
  """One line listing the metadata.csv rows not used or overridden (None when there is none)."""
  # .get: metadata stored by versions before 'problems' (clean folders keep their data).
  return file_listing.problems_line(metadata['wav_dir'], metadata.get('problems', []))
