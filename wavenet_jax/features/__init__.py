r"""A locally conditioned model's features: what it is conditioned on, frame by frame.

config.data.features.source chooses them: 'mel' (the default), the log-mel computed from the
audio (`LogMel`); 'files', float32 [frames, channels] arrays read from `<stem>.npy` beside each
audio file (or in config.data.features.dir, a folder that mirrors the audio's paths);
'labels', the paper's linguistic features + log-F0 made from each audio file's `<stem>.lab` when
the folder is prepared (`wavenet_jax.linguistic`). Either way frame k covers samples
[k * hop_length, (k + 1) * hop_length). `LogMel` and `FileFeatures` are the two homes of these
features: the input pipeline, evaluation, sampling and the experiments build the checkpoint's
(`from_config`: config.data + the training set's statistics saved in its dataset info) and
normalise frames with it (`normalise`), so that the features a model is conditioned on at
sampling time are exactly those it was trained on. LogMel states its convention in full (sample
rate, STFT, mel filterbank, log, statistics; `LogMel.describe`, printed for a workdir by
`python -m wavenet_jax.features.describe`): what a caller's own mel frames must match, or be
converted to from another model's convention (`features.conventions`).

numpy only (audio.py computes the log-mel): the inference path stays free of the data stack.

  python -m wavenet_jax.features --wav_dir=DIR [--out_dir=MIRROR] [--hop_length=80]

(features/__main__.py) writes the linguistic features of each audio file of DIR that has a
`.lab` beside it as `<stem>.npy` (beside it, or at the same relative path under MIRROR): see
`wavenet_jax.linguistic`.
"""
import dataclasses
import pathlib
from typing import Any, ClassVar, Optional, Union

import numpy as np

from wavenet_jax import audio as audio_lib
from wavenet_jax.dataset_info import DatasetInfo

MEL, FILES, LABELS = 'mel', 'files', 'labels'
SOURCES = (MEL, FILES, LABELS)
# config.data.features.normalisation of 'files' and 'labels' features (input_pipeline computes
# the statistics: per channel the mean and std, or the minimum and max - min, or the mean and
# std of the channels that are not all 0/1).
NORMALISATIONS = ('standard', 'min_max', 'standard_non_binary')
# Frames from files may be this many more or fewer than their audio needs (ceil(samples / hop)):
# the usual length mismatch of features predicted by another model (GTA mels).
FRAME_TOLERANCE = 2


def fit_frames(frames: np.ndarray, num_samples: int, hop_length: int,
               name: str) -> np.ndarray | str:
  """float32 [ceil(num_samples / hop_length), C]: frames cropped, or padded with their last,
  when within FRAME_TOLERANCE of that; else why not (naming `name`), as do NaN or inf values."""
  needed = -(-num_samples // hop_length)
  if abs(len(frames) - needed) > FRAME_TOLERANCE or not len(frames):
    return (f'{name} holds {len(frames)} frames, its {num_samples} samples need {needed} '
            f'(hop {hop_length}; more than {FRAME_TOLERANCE} off)')
  if not np.all(np.isfinite(frames)):
    return f'{name} holds NaN or infinite values'
  frames = np.asarray(frames[:needed], np.float32)
  return np.concatenate([frames, np.repeat(frames[-1:], needed - len(frames), axis=0)])


def _statistics(dataset_info: DatasetInfo, prefix: str,
                kind: str) -> tuple[np.ndarray, np.ndarray]:
  """dataset_info's PREFIX_mean and PREFIX_std; ValueError if it has none (`kind` features)."""
  mean, std = getattr(dataset_info, f'{prefix}_mean'), getattr(dataset_info, f'{prefix}_std')
  if mean is None or std is None:
    raise ValueError(f'{kind} features need the training set\'s {kind} statistics '
                     f'(DatasetInfo.{prefix}_mean/{prefix}_std), and this dataset info has none.')
  return mean, std


def _normalised(frames: Any, mean: np.ndarray, std: np.ndarray, name: str) -> np.ndarray:
  """float32 [frames, C] (frames - mean) / std; a one-line ValueError starting with `name` for
  an array that is not [frames, C] with frames > 0, or holds NaN or infinite values."""
  frames = np.asarray(frames)
  if frames.ndim != 2 or frames.shape[1] != len(mean):
    raise ValueError(f'{name}: features of shape {frames.shape}, but this model reads '
                     f'[frames, {len(mean)}] arrays ({len(mean)} channels).')
  if not len(frames):
    raise ValueError(f'{name}: the features array holds no frames.')
  if not np.all(np.isfinite(frames)):
    raise ValueError(f'{name}: the features hold NaN or infinite values.')
  return ((frames - mean) / std).astype(np.float32)


def _span(values: np.ndarray) -> str:
  """'[n] from LOW to HIGH' of a float [n] array."""
  return f'[{len(values)}] from {float(np.min(values)):.3f} to {float(np.max(values)):.3f}'


@dataclasses.dataclass(frozen=True, eq=False)
class LogMel:
  """Normalised log-mel frames of a waveform: float32 [time] -> float32 [frames, n_mels].

  Frame k of a span covers its samples [k * hop_length, (k + 1) * hop_length); its n_fft
  window is centred on that interval (zeros beyond the waveform's ends), so a span of n
  samples has ceil(n / hop_length) frames (`num_frames`) and the frames of a crop starting at
  a multiple of hop_length equal the whole clip's (see `audio.log_mel`).

  Attributes:
    sample_rate: of the waveforms, in Hz.
    n_mels: mel bands (the features' channels).
    hop_length: samples per frame.
    n_fft: STFT size (>= hop_length).
    fmin, fmax: the filterbank's edges in Hz.
    mean: float32 [n_mels] per-band mean of the training set's log-mel frames.
    std: float32 [n_mels] their standard deviation; features = (log-mel - mean) / std.
  """
  sample_rate: int
  n_mels: int
  hop_length: int
  n_fft: int
  fmin: float
  fmax: float
  mean: np.ndarray
  std: np.ndarray

  # The rest of the convention, the same for every checkpoint: waveforms in [-1, 1] without
  # pre-emphasis, a periodic Hann window as long as n_fft, STFT magnitudes (power 1), Slaney's
  # mel scale and area normalisation (librosa's defaults), the natural log of the mel
  # magnitudes floored at audio.MEL_FLOOR.
  window: ClassVar[str] = 'hann'
  preemphasis: ClassVar[float] = 0.0
  power: ClassVar[float] = 1.0
  mel_scale: ClassVar[str] = 'slaney'
  mel_norm: ClassVar[str] = 'slaney'
  log_base: ClassVar[str] = 'e'
  floor: ClassVar[float] = audio_lib.MEL_FLOOR

  @classmethod
  def from_config(cls, data_config: Any, dataset_info: DatasetInfo) -> 'LogMel':
    """The features of a checkpoint or a run: config.data (sample rate, mel) + its statistics.

    Raises:
      ValueError: if dataset_info holds no mel statistics.
    """
    mean, std = _statistics(dataset_info, 'mel', 'mel')
    mel = data_config.mel
    return cls(sample_rate=int(data_config.sample_rate), n_mels=int(mel.n_mels),
               hop_length=int(mel.hop_length), n_fft=int(mel.n_fft), fmin=float(mel.fmin),
               fmax=float(mel.fmax), mean=mean, std=std)

  def num_frames(self, num_samples: int) -> int:
    """Frames of a span of num_samples samples: ceil(num_samples / hop_length)."""
    return audio_lib.num_mel_frames(num_samples, self.hop_length)

  @property
  def channels(self) -> int:
    """The features' channels: n_mels."""
    return self.n_mels

  @property
  def win_length(self) -> int:
    """The window's length: n_fft."""
    return self.n_fft

  def describe(self) -> str:
    """The convention in full, a setting a line, ending with it as a
    `conventions.parse` text (what `sample.py --features_convention` takes)."""
    analysis = (f'sample_rate={self.sample_rate},n_fft={self.n_fft},hop_length='
                f'{self.hop_length},n_mels={self.n_mels},fmin={self.fmin:g},fmax={self.fmax:g}')
    return '\n'.join([
        f'sample_rate: {self.sample_rate} Hz (waveforms in [-1, 1], no pre-emphasis)',
        f'stft: n_fft={self.n_fft}, a periodic {self.window} window of {self.win_length} '
        f'samples, hop_length={self.hop_length}, magnitudes (power {self.power:g})',
        f'framing: frame k\'s window centred on samples [k * {self.hop_length}, (k + 1) * '
        f'{self.hop_length}) (zeros beyond the ends): ceil(samples / {self.hop_length}) frames',
        f'mel: n_mels={self.n_mels}, fmin={self.fmin:g} Hz, fmax={self.fmax:g} Hz, '
        f'{self.mel_scale} scale, {self.mel_norm} norm (librosa.filters.mel\'s defaults)',
        f'log: ln(max(mel, {self.floor:g})) (natural log)',
        f'statistics: mean {_span(self.mean)}, std {_span(self.std)}; the model reads '
        '(log-mel - mean) / std',
        'sample.py --features takes the log-mel before the statistics, or with '
        '--features_convention another convention of the same analysis; this one is '
        f'natural:{analysis}',
    ])

  def normalise(self, log_mel: Any, name: str = 'features') -> np.ndarray:
    """float32 [frames, n_mels] log-mel frames of this convention -> the model's features.

    Raises:
      ValueError: in one line starting with `name`, for another shape, no frames, NaN.
    """
    return _normalised(log_mel, self.mean, self.std, name)

  def __call__(self, waveform: np.ndarray, start: int = 0,
               num_samples: Optional[int] = None) -> np.ndarray:
    """The features of waveform[start:start + num_samples].

    Args:
      waveform: float32 [time] at sample_rate.
      start: first sample of the span (the window reads the samples around it).
      num_samples: the span's length; None: to the end of the waveform.

    Returns:
      float32 [num_frames(num_samples), n_mels]: (log-mel - mean) / std.
    """
    log_mel = audio_lib.log_mel(waveform, self.sample_rate, self, start, num_samples)
    return ((log_mel - self.mean) / self.std).astype(np.float32)

  def of_file(self, path: pathlib.Path, waveform: np.ndarray) -> np.ndarray:
    """The features of an audio file (the path unused: computed from its waveform)."""
    del path
    return self(waveform)

  def read_from_files(self) -> 'FileFeatures':
    """This model's features read from each audio file's `<stem>.npy` (log-mel frames of this
    convention, not normalised: e.g. another model's predicted mels) instead of computed from
    the audio; normalised with the same statistics."""
    return FileFeatures(hop_length=self.hop_length, mean=self.mean, std=self.std,
                        sample_rate=self.sample_rate)


@dataclasses.dataclass(frozen=True, eq=False)
class FileFeatures:
  """Normalised frames of features made elsewhere: float32 [frames, channels] -> the same.

  Frame k covers samples [k * hop_length, (k + 1) * hop_length) of its audio, so a span of n
  samples has ceil(n / hop_length) frames (`num_frames`).

  Attributes:
    hop_length: samples per frame.
    mean: float32 [channels] per-channel mean of the training set's frames.
    std: float32 [channels] their standard deviation (1 for a channel constant over the
      training set, e.g. a phone it never holds); features = (frames - mean) / std.
    sample_rate: of the audio, in Hz.
    source: FILES (an audio file's frames: `<stem>.npy` beside it) or LABELS (made from
      `<stem>.lab` beside it and the audio, `linguistic.utterance_features`).
    phones: the phone set of LABELS.
  """
  hop_length: int
  mean: np.ndarray
  std: np.ndarray
  sample_rate: int = 16000
  source: str = FILES
  phones: tuple[str, ...] = ()

  @classmethod
  def from_config(cls, data_config: Any, dataset_info: DatasetInfo) -> 'FileFeatures':
    """The features of a checkpoint or a run: config.data.features + their statistics.

    Raises:
      ValueError: if dataset_info holds no feature statistics.
    """
    mean, std = _statistics(dataset_info, 'features', 'file')
    section = data_config.features
    phones = ()
    if section.source == LABELS:
      from wavenet_jax import linguistic  # pylint: disable=import-outside-toplevel; numpy only.
      phones = linguistic.phone_set(section.phones)
    return cls(hop_length=int(section.hop_length), mean=mean, std=std,
               sample_rate=int(data_config.sample_rate), source=section.source, phones=phones)

  @property
  def channels(self) -> int:
    return len(self.mean)

  def describe(self) -> str:
    """The frames this model reads, in one line."""
    return (f'features from {self.source}: float32 [frames, {self.channels}] frames, '
            f'hop_length={self.hop_length} at {self.sample_rate} Hz; statistics: mean '
            f'{_span(self.mean)}, std {_span(self.std)}; the model reads (frames - mean) / std')

  def num_frames(self, num_samples: int) -> int:
    """Frames of a span of num_samples samples: ceil(num_samples / hop_length)."""
    return audio_lib.num_mel_frames(num_samples, self.hop_length)

  def normalise(self, frames: Any, name: str = 'features') -> np.ndarray:
    """float32 [frames, channels] as stored in the files -> the model's features.

    Raises:
      ValueError: in one line starting with `name`, for another shape, no frames, NaN.
    """
    return _normalised(frames, self.mean, self.std, name)

  def of_file(self, path: pathlib.Path, waveform: np.ndarray) -> np.ndarray:
    """float32 [ceil(len(waveform) / hop_length), channels]: the normalised features of the
    audio file at `path` (waveform: its float32 [time] samples at the model's rate).

    Raises:
      ValueError: naming the file, for features that are missing, do not fit the audio
        (`fit_frames`) or have another channel count.
    """
    return self.normalise(self.frames_of_file(path, waveform), str(self._source_file(path)))

  def frames_of_file(self, path: pathlib.Path, waveform: np.ndarray) -> np.ndarray:
    """`of_file`'s frames before normalisation, as stored for training (made from the .lab and
    the audio, or read from the .npy; fitted to the audio), their channels not checked.

    Raises:
      ValueError: naming the file, for features that are missing or do not fit the audio.
    """
    from wavenet_jax import linguistic  # pylint: disable=import-outside-toplevel; numpy only.
    source = self._source_file(path)
    if self.source == LABELS:
      if not source.is_file():
        raise ValueError(f'no labels file {source}')
      frames = linguistic.utterance_features(waveform, linguistic.read_lab(source),
                                             self.hop_length, self.sample_rate, self.phones)
    else:
      try:
        frames = np.load(source, allow_pickle=False)
      except (OSError, ValueError) as error:
        raise ValueError(f'no features file {source} ({error})') from None
    fitted = fit_frames(frames, len(waveform), self.hop_length, str(source))
    if isinstance(fitted, str):
      raise ValueError(fitted)
    return fitted

  def _source_file(self, path: pathlib.Path) -> pathlib.Path:
    """The file the features of the audio file `path` are made from (.lab) or read from."""
    if self.source == LABELS:
      from wavenet_jax import linguistic  # pylint: disable=import-outside-toplevel; numpy only.
      return linguistic.lab_path(path)
    return path.with_suffix('.npy')

Features = Union[LogMel, FileFeatures]


def source(data_config: Any) -> str:
  """config.data.features.source ('mel' for configs written before it existed)."""
  section = data_config.get('features')
  return MEL if section is None else section.source


def channels_and_hop(data_config: Any) -> tuple[int, int]:
  """(channels, hop_length) of the local conditioning features config.data describes.

  Raises:
    ValueError: naming the key, for an unknown source or a channel count or hop below 1.
  """
  kind = source(data_config)
  if kind == MEL:
    return int(data_config.mel.n_mels), int(data_config.mel.hop_length)
  section = data_config.features
  if kind == LABELS:
    from wavenet_jax import linguistic  # pylint: disable=import-outside-toplevel; numpy only.
    channels = linguistic.num_channels(linguistic.phone_set(section.phones))
  elif kind == FILES:
    channels = int(section.channels)
  else:
    raise ValueError(f'config.data.features.source={kind!r} must be one of {list(SOURCES)}.')
  for key, value in (('channels', channels), ('hop_length', section.hop_length)):
    if int(value) < 1:
      raise ValueError(f'config.data.features.{key} must be >= 1, got {value}.')
  return channels, int(section.hop_length)


def from_config(data_config: Any, dataset_info: DatasetInfo) -> Features:
  """The local conditioning features of a checkpoint or a run (`LogMel` or `FileFeatures`)."""
  if source(data_config) == MEL:
    return LogMel.from_config(data_config, dataset_info)
  return FileFeatures.from_config(data_config, dataset_info)

