"""Audio quality metrics: spectral distances between waveforms, f0, a count-model baseline.

What experiments/report.py reports on a trained model: log-mel spectral distance and
mel-cepstral distortion of a resynthesis against the original, Griffin-Lim from the same
mel as the reference vocoder, the f0 of voiced frames, and the bits/sample of an order-n
count model of μ-law classes (the baseline a WaveNet must beat).
"""
import math
from typing import Any, Optional

import librosa
import numpy as np
import scipy.fft

from wavenet_jax import audio as audio_lib
from wavenet_jax import mulaw

# f0 search range of librosa.pyin: adult speech, low male to high female voices.
F0_MIN_HZ = 60.0
F0_MAX_HZ = 400.0
# Mel-cepstral coefficients compared by the MCD (c_1 .. c_24; c_0, the energy, is left out).
MCD_COEFFICIENTS = 24
_DB_PER_NEPER = 20.0 / math.log(10.0)  # 20 log10(x) = _DB_PER_NEPER * ln(x).


def _paired_log_mels(reference: np.ndarray, estimate: np.ndarray, sample_rate: int,
                     mel_config: Any, floor_db: Optional[float]
                     ) -> tuple[np.ndarray, np.ndarray]:
  """ln |mel| of both signals over their common length: float32 [frames, n_mels] each.

  floor_db: |mel| below 10^(floor_db / 20) is raised to it in both (None: audio.log_mel's
  floor, -100 dB).
  """
  length = min(len(reference), len(estimate))
  log_mels = (audio_lib.log_mel(reference[:length], sample_rate, mel_config),
              audio_lib.log_mel(estimate[:length], sample_rate, mel_config))
  if floor_db is None:
    return log_mels
  return tuple(np.maximum(log_mel, floor_db / _DB_PER_NEPER) for log_mel in log_mels)


def log_mel_distance_db(reference: np.ndarray, estimate: np.ndarray, sample_rate: int,
                        mel_config: Any, floor_db: Optional[float] = None) -> float:
  """Log-mel spectral distance in dB: mean over frames of the RMS over mel bins of
  20 log10 |mel_estimate| - 20 log10 |mel_reference| (audio.log_mel features, frames aligned
  sample for sample, over the common length).

  Args:
    reference, estimate: float32 [time] waveforms at sample_rate.
    mel_config: n_mels, hop_length, n_fft, fmin, fmax (config.data.mel).
    floor_db: |mel| floor in dB applied to both (None: audio.log_mel's, -100 dB). Digital
      silence against low-level noise otherwise dominates the mean.
  """
  reference_mel, estimate_mel = _paired_log_mels(reference, estimate, sample_rate, mel_config,
                                                 floor_db)
  difference_db = _DB_PER_NEPER * (estimate_mel - reference_mel)
  return float(np.mean(np.sqrt(np.mean(np.square(difference_db), axis=1))))


def mel_cepstra(log_mel: np.ndarray, num_coefficients: int = MCD_COEFFICIENTS) -> np.ndarray:
  """Mel cepstra c_1 .. c_num_coefficients: orthonormal DCT-II of ln |mel| over the mel bins.

  Args:
    log_mel: float32 [frames, n_mels] (audio.log_mel).

  Returns:
    float64 [frames, num_coefficients].
  """
  return scipy.fft.dct(log_mel.astype(np.float64), type=2, norm='ortho',
                       axis=1)[:, 1:num_coefficients + 1]


def mel_cepstral_distortion_db(reference: np.ndarray, estimate: np.ndarray, sample_rate: int,
                               mel_config: Any, num_coefficients: int = MCD_COEFFICIENTS,
                               floor_db: Optional[float] = None) -> float:
  """Mel-cepstral distortion in dB: mean over frames of (10 / ln 10) sqrt(2 Σ_d Δc_d²).

  c_d: `mel_cepstra` of the audio.log_mel features (DCT of the log mel filterbank, not
  SPTK's all-pole mel-cepstrum, so values compare between systems of one table, not with
  published MCDs); frames aligned sample for sample; c_0 (the level) left out.

  Args:
    reference, estimate: float32 [time] waveforms at sample_rate.
    mel_config: config.data.mel.
    floor_db: as in `log_mel_distance_db`.
  """
  reference_mel, estimate_mel = _paired_log_mels(reference, estimate, sample_rate, mel_config,
                                                 floor_db)
  difference = mel_cepstra(estimate_mel, num_coefficients) - mel_cepstra(reference_mel,
                                                                          num_coefficients)
  per_frame = 10.0 / math.log(10.0) * np.sqrt(2.0 * np.sum(np.square(difference), axis=1))
  return float(np.mean(per_frame))


def voiced_f0_hz(audio: np.ndarray, sample_rate: int) -> np.ndarray:
  """f0 of the voiced frames of a waveform: librosa.pyin(fmin=60, fmax=400); float [voiced]."""
  f0, voiced, _ = librosa.pyin(audio.astype(np.float32), fmin=F0_MIN_HZ, fmax=F0_MAX_HZ,
                               sr=sample_rate)
  return f0[voiced & np.isfinite(f0)]


def griffin_lim_from_log_mel(log_mel: np.ndarray, sample_rate: int, mel_config: Any,
                             num_samples: int, num_iters: int) -> np.ndarray:
  """Griffin-Lim reconstruction (librosa.feature.inverse.mel_to_audio) of audio.log_mel frames.

  audio.log_mel centres frame k on samples k * hop + hop / 2; librosa centres it on
  k * hop, so the reconstruction is delayed by hop / 2 to line up with the original.

  Args:
    log_mel: float32 [frames, n_mels] ln |mel| (not normalised).
    num_samples: length of the returned waveform.

  Returns:
    float32 [num_samples].
  """
  hop = int(mel_config.hop_length)
  waveform = librosa.feature.inverse.mel_to_audio(
      np.exp(log_mel.T), sr=sample_rate, n_fft=int(mel_config.n_fft), hop_length=hop,
      power=1.0, n_iter=num_iters, fmin=float(mel_config.fmin), fmax=float(mel_config.fmax))
  delayed = np.concatenate([np.zeros(hop // 2, np.float32), waveform.astype(np.float32)])
  return np.pad(delayed, (0, max(0, num_samples - len(delayed))))[:num_samples]


def _context_and_target(classes: np.ndarray, order: int) -> np.ndarray:
  """int64 [T - order]: x[t - order .. t] of every position t >= order as one base-256 number."""
  classes = classes.astype(np.int64)
  index = np.zeros(len(classes) - order, np.int64)
  for offset in range(order + 1):
    index = index * mulaw.NUM_CLASSES + classes[offset:len(classes) - order + offset]
  return index


def count_model_bits_per_sample(train: list[np.ndarray], held_out: list[np.ndarray],
                                order: int = 2, alpha: float = 0.5) -> float:
  """Bits/sample of an order-`order` count model of μ-law classes (the baseline to beat).

  p(x_t | x_{t-order} .. x_{t-1}) = (c(context, x_t) + alpha) / (c(context) + 256 alpha),
  counted on `train`, scored on the positions t >= order of `held_out`.

  Args:
    train, held_out: lists of int [time] μ-law class sequences.
  """
  size = mulaw.NUM_CLASSES ** (order + 1)
  counts = np.bincount(np.concatenate([_context_and_target(c, order) for c in train]),
                       minlength=size)
  context_counts = counts.reshape(-1, mulaw.NUM_CLASSES).sum(axis=1)
  index = np.concatenate([_context_and_target(c, order) for c in held_out])
  probabilities = ((counts[index] + alpha)
                   / (context_counts[index // mulaw.NUM_CLASSES] + mulaw.NUM_CLASSES * alpha))
  return float(-np.mean(np.log2(probabilities)))
