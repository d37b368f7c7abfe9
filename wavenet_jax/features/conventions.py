r"""Other people's log-mel conventions, converted to a vocoder's (`features.LogMel`).

An acoustic model (Tacotron 2, FastSpeech, an ESPnet recipe, ...) predicts mel frames in its own
convention; a vocoder decodes only its own. `convert_mel` takes frames of a `MelConvention` to
the log-mel of a `LogMel` (before its normalisation: what `TrainedModel.conditioning(features=)`
and `sample.py --features` read). Every convention below starts from the same mel magnitudes
M = mel_basis @ |STFT| (power 1, Slaney mel scale and area norm: librosa's defaults) and differs
in what it then does to them; `x` is the frame value stored in the other convention:

  'natural'     x = ln(max(M, floor)), floor 1e-5: NVIDIA/tacotron2 (layers.TacotronSTFT,
                audio_processing.dynamic_range_compression), HiFi-GAN; the vocoder's own. ESPnet2's
                LogMelFbank (log_base=None) is the same with floor 1e-10.
  'log10'       x = log10(max(M, floor)), floor 1e-10: kan-bayashi/ParallelWaveGAN
                (preprocess.logmelfilterbank, log_base=10), ESPnet2's LogMelFbank(log_base=10).
  'db'          x = 20 log10(max(M, floor)) - ref_level_db, floor 1e-5, ref_level_db 0:
                librosa.amplitude_to_db(M, ref=1, amin=1e-5) (its top_db clip is a floor
                relative to the utterance's loudest value: below it the values are lost).
  'clipped01'   x = clip((S - min_level_db) / -min_level_db, 0, 1), S = 20 log10(max(M,
                10^(min_level_db / 20))) - ref_level_db, min_level_db -100, ref_level_db 20:
                r9y9/wavenet_vocoder audio.py (_amp_to_db, _normalize), keithito/tacotron.
  'symmetric4'  x = clip(2 * 4 * (S - min_level_db) / -min_level_db - 4, -4, 4), S as above:
                Rayhane-mama/Tacotron-2 (symmetric_mels, max_abs_value 4).
  'asymmetric4' x = clip(4 * (S - min_level_db) / -min_level_db, 0, 4): the same, not symmetric.

Each may be followed by the other model's own normalisation, (x - mean) / std per band
(ParallelWaveGAN's stats: mean and scale), undone first. Values the other convention clipped
(at its floor, or at the ends of a clipped range) cannot be recovered: they convert to the
clipping level; all others convert exactly (to float precision).

What no formula can convert: another sample rate, n_fft, window length, hop, n_mels, fmin, fmax,
STFT power, mel scale or norm, window or pre-emphasis (Rayhane-mama/Tacotron-2 pre-emphasises
by 0.97 by default). A convention states those it knows (None: the vocoder's, unstated), and
`convert_mel` refuses any that differ from the vocoder's in one line naming it. Frames centred on
samples k * hop (librosa's center=True) rather than on [k * hop, (k + 1) * hop) (the vocoder's)
are half a hop earlier: not converted, a shift of 1/2 frame.

numpy only: part of the inference path.
"""
import dataclasses
import math
from typing import Any, Optional

import numpy as np

from wavenet_jax.features import LogMel

LOGS = ('ln', 'log10', 'db')
SCALES = ('none', 'clipped01', 'symmetric', 'asymmetric')
# The analysis settings a convention may state, with the LogMel attribute each must equal.
ANALYSIS = ('sample_rate', 'n_fft', 'win_length', 'hop_length', 'n_mels', 'fmin', 'fmax',
            'power', 'mel_scale', 'mel_norm', 'window', 'preemphasis')


@dataclasses.dataclass(frozen=True, eq=False)
class MelConvention:
  """How another model's mel frames were made from mel magnitudes M (see the module docstring).

  Attributes:
    log: 'ln', 'log10' or 'db' (20 log10 of magnitudes, minus ref_level_db).
    floor: the magnitude M was floored at before the log.
    ref_level_db: dB subtracted after the log ('db' only).
    scale: 'none', or how dB were scaled into a clipped range: 'clipped01' ([0, 1]),
      'symmetric' ([-max_abs_value, max_abs_value]), 'asymmetric' ([0, max_abs_value]).
    min_level_db: the dB level mapped to the bottom of a scaled range.
    max_abs_value: the top of a 'symmetric' or 'asymmetric' range.
    mean, std: float [n_mels] the other model's normalisation, x = (value - mean) / std, or None.
    sample_rate ... preemphasis: the analysis settings, None where not stated (then taken to
      be the vocoder's); any stated one must equal the vocoder's (`check`).
  """
  log: str = 'ln'
  floor: float = 1e-5
  ref_level_db: float = 0.0
  scale: str = 'none'
  min_level_db: float = -100.0
  max_abs_value: float = 4.0
  mean: Optional[np.ndarray] = None
  std: Optional[np.ndarray] = None
  sample_rate: Optional[int] = None
  n_fft: Optional[int] = None
  win_length: Optional[int] = None
  hop_length: Optional[int] = None
  n_mels: Optional[int] = None
  fmin: Optional[float] = None
  fmax: Optional[float] = None
  power: Optional[float] = None
  mel_scale: Optional[str] = None
  mel_norm: Optional[str] = None
  window: Optional[str] = None
  preemphasis: Optional[float] = None

  def __post_init__(self):
    if self.log not in LOGS:
      raise ValueError(f'log={self.log!r} must be one of {list(LOGS)}.')
    if self.scale not in SCALES:
      raise ValueError(f'scale={self.scale!r} must be one of {list(SCALES)}.')
    if self.scale != 'none' and self.log != 'db':
      raise ValueError(f'scale={self.scale!r} scales decibels: it needs log=\'db\'.')
    if not self.floor > 0 or not self.min_level_db < 0 or not self.max_abs_value > 0:
      raise ValueError('floor and max_abs_value must be > 0 and min_level_db < 0.')
    if (self.mean is None) != (self.std is None):
      raise ValueError('mean and std come together (the other model\'s normalisation).')

  def check(self, target: LogMel, channels: int) -> None:
    """Raises a one-line ValueError naming the first stated setting that differs from target's
    (the vocoder's), or frames of `channels` bands for another n_mels or statistics."""
    n_mels = self.n_mels if self.n_mels is not None else target.n_mels
    if channels != n_mels:
      raise ValueError(f'the frames have {channels} mel bands, the convention states {n_mels}.')
    for name in ANALYSIS:
      stated, own = getattr(self, name), getattr(target, name)
      if stated is not None and stated != own and not (
          isinstance(own, float) and math.isclose(float(stated), own)):
        raise ValueError(f'{name}={stated} of these mels is not the vocoder\'s {own}: no exact '
                         'conversion exists (a vocoder decodes only its own analysis).')
    if self.mean is not None and (np.shape(self.mean) != (channels,)
                                  or np.shape(self.std) != (channels,)):
      raise ValueError(f'the statistics have shapes {np.shape(self.mean)} and '
                       f'{np.shape(self.std)}; the frames have {channels} bands.')

  def natural_log(self, frames: np.ndarray) -> np.ndarray:
    """float64 [frames, n_mels] stored values -> ln(max(M, floor)) (clipped values at the
    clipping level)."""
    values = np.asarray(frames, np.float64)
    if self.mean is not None:
      values = values * np.asarray(self.std, np.float64) + np.asarray(self.mean, np.float64)
    if self.log == 'ln':
      return values
    if self.log == 'log10':
      return values * np.log(10.0)
    if self.scale == 'clipped01':
      values = values * -self.min_level_db + self.min_level_db
    elif self.scale == 'symmetric':
      values = ((values + self.max_abs_value) / (2 * self.max_abs_value) * -self.min_level_db
                + self.min_level_db)
    elif self.scale == 'asymmetric':
      values = values / self.max_abs_value * -self.min_level_db + self.min_level_db
    return (values + self.ref_level_db) / 20.0 * np.log(10.0)


_DB_SCALED = dict(log='db', ref_level_db=20.0, min_level_db=-100.0)
# The named conventions (the module docstring gives each one's definition and source).
CONVENTIONS = {
    'natural': dict(log='ln', floor=1e-5),
    'log10': dict(log='log10', floor=1e-10),
    'db': dict(log='db', floor=1e-5),
    'clipped01': dict(_DB_SCALED, scale='clipped01'),
    'symmetric4': dict(_DB_SCALED, scale='symmetric', max_abs_value=4.0),
    'asymmetric4': dict(_DB_SCALED, scale='asymmetric', max_abs_value=4.0),
}
_FIELD_TYPES = {'sample_rate': int, 'n_fft': int, 'win_length': int, 'hop_length': int,
                'n_mels': int, 'mel_scale': str, 'mel_norm': str, 'window': str, 'log': str,
                'scale': str}


def parse(text: str, statistics: Optional[tuple[np.ndarray, np.ndarray]] = None
          ) -> MelConvention:
  """'NAME[:key=value,...]' -> its MelConvention: a name of CONVENTIONS, then any field's
  value, e.g. 'log10:sample_rate=22050,hop_length=256,fmin=80,fmax=7600'.

  Args:
    text: the convention.
    statistics: the other model's (mean, std) float [n_mels] arrays, or None.

  Raises:
    ValueError: in one line, for an unknown name or field or a value that does not parse.
  """
  name, _, settings = text.partition(':')
  if name not in CONVENTIONS:
    raise ValueError(f'unknown mel convention {name!r}; known: {", ".join(CONVENTIONS)}.')
  fields = dict(CONVENTIONS[name])
  known = {field.name for field in dataclasses.fields(MelConvention)} - {'mean', 'std'}
  for setting in filter(None, settings.split(',')):
    key, _, value = setting.partition('=')
    if key not in known or not value:
      raise ValueError(f'{setting!r} is not key=value with a key of {sorted(known)}.')
    try:
      fields[key] = _FIELD_TYPES.get(key, float)(value)
    except ValueError:
      raise ValueError(f'{key}={value!r} is not a number.') from None
  mean, std = (None, None) if statistics is None else statistics
  return MelConvention(**fields, mean=mean, std=std)


def read_statistics(path: str) -> tuple[np.ndarray, np.ndarray]:
  """(mean, std) float64 [n_mels] from a .npz or .h5 with 'mean' and 'std' (or ParallelWaveGAN's
  'scale': its stats.h5), or a .npy [2, n_mels] array of mean then std (its stats.npy).

  Raises:
    ValueError: naming the file, for one that does not load or holds no such arrays.
  """
  if path.endswith(('.h5', '.hdf5')):
    loaded = _read_hdf5(path)
  else:
    try:
      loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
      raise ValueError(f'{path}: not a .npy or .npz file ({error}).') from None
  if isinstance(loaded, np.ndarray):
    pair = loaded if loaded.ndim == 2 and len(loaded) == 2 else None
  else:
    std_key = 'std' if 'std' in loaded else 'scale'
    pair = (loaded['mean'], loaded[std_key]) if {'mean', std_key} <= set(loaded) else None
  if pair is None:
    raise ValueError(f'{path}: neither a [2, n_mels] array (mean, std) nor an .npz/.h5 of '
                     '\'mean\' and \'std\' (or \'scale\').')
  mean, std = (np.asarray(part, np.float64) for part in pair)
  if mean.shape != std.shape or mean.ndim != 1 or not np.all(std > 0):
    raise ValueError(f'{path}: mean {mean.shape} and std {std.shape} must be [n_mels] arrays '
                     'with std > 0.')
  return mean, std


def _read_hdf5(path: str) -> dict[str, np.ndarray]:
  """The top-level datasets of an HDF5 file (h5py is imported for this format only)."""
  try:
    import h5py  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise ValueError(f'{path}: reading HDF5 needs h5py (pip install h5py), or save the '
                     'statistics as .npy/.npz.') from None
  try:
    with h5py.File(path, 'r') as file:
      return {name: np.asarray(item) for name, item in file.items()
              if isinstance(item, h5py.Dataset)}
  except OSError as error:
    raise ValueError(f'{path}: not an HDF5 file ({error}).') from None


def convert_mel(frames: Any, source: MelConvention, target: LogMel) -> np.ndarray:
  """Mel frames of another convention -> the log-mel of the vocoder's, before its statistics.

  Args:
    frames: float [frames, n_mels] in `source`'s convention.
    source: how they were made (`parse`, or a MelConvention).
    target: the vocoder's `features.LogMel`.

  Returns:
    float32 [frames, n_mels] ln(max(M, target.floor)): what `target.normalise` (or
    `TrainedModel.conditioning(features=)`) takes.

  Raises:
    ValueError: in one line, for frames that are not [frames, n_mels] or a setting of `source`
      that differs from the vocoder's (no exact conversion exists).
  """
  frames = np.asarray(frames)
  if frames.ndim != 2:
    raise ValueError(f'mel frames of shape {frames.shape}; [frames, n_mels] is needed.')
  source.check(target, frames.shape[1])
  return np.maximum(source.natural_log(frames), np.log(target.floor)).astype(np.float32)
