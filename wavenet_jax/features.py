"""A locally conditioned model's features: what it is conditioned on, computed from a waveform.

`LogMel` is the one home of the vocoder's conditioning features: the input pipeline, evaluation,
sampling and the experiments build it from the checkpoint (config.data + the training set's
mel statistics saved in its dataset info, `from_config`) and call it, so that the features a
model is conditioned on at sampling time are exactly those it was trained on. It states its
convention in full (sample rate, STFT, mel filterbank, log, statistics): what a caller's own
mel frames must match.

numpy only (audio.py computes the log-mel): the inference path stays free of the data stack.
"""
import dataclasses
from typing import Any, ClassVar, Optional

import numpy as np

from wavenet_jax import audio as audio_lib
from wavenet_jax.dataset_info import DatasetInfo


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

  # The rest of the convention, the same for every checkpoint: a periodic Hann window, STFT
  # magnitudes (power 1), Slaney's mel scale and area normalisation (librosa's defaults),
  # the natural log of the mel magnitudes floored at audio.MEL_FLOOR.
  window: ClassVar[str] = 'hann'
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
    if dataset_info.mel_mean is None or dataset_info.mel_std is None:
      raise ValueError('mel features need the training set\'s mel statistics '
                       '(DatasetInfo.mel_mean/mel_std), and this dataset info has none.')
    mel = data_config.mel
    return cls(sample_rate=int(data_config.sample_rate), n_mels=int(mel.n_mels),
               hop_length=int(mel.hop_length), n_fft=int(mel.n_fft), fmin=float(mel.fmin),
               fmax=float(mel.fmax), mean=dataset_info.mel_mean, std=dataset_info.mel_std)

  def num_frames(self, num_samples: int) -> int:
    """Frames of a span of num_samples samples: ceil(num_samples / hop_length)."""
    return audio_lib.num_mel_frames(num_samples, self.hop_length)

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
