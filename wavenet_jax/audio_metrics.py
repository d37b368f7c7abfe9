"""Audio quality metrics: spectral distances, PESQ and STOI, f0, a count-model baseline.

What experiments/tools/report.py reports on a trained model: log-mel spectral distance,
mel-cepstral distortion, wide-band PESQ and STOI of a resynthesis against the original,
Griffin-Lim from the same mel as the reference vocoder, the f0 of voiced frames, and the
bits/sample of an order-n count model of μ-law classes (the baseline a WaveNet must beat);
what experiments/tools/tts_report.py reports: how one F0 track follows another.

PESQ and STOI need the `pesq` and `pystoi` packages (pip install 'wavenet-jax[metrics]'),
imported only when called.
"""
import math
from typing import Any, Optional
import warnings

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
# Wide-band PESQ (ITU-T P.862.2) is defined on 16 kHz audio only.
PESQ_SAMPLE_RATE = 16000


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


def _paired_waveforms(reference: np.ndarray, estimate: np.ndarray, metric: str
                      ) -> tuple[np.ndarray, np.ndarray]:
  """Both waveforms over their common length, float32 [length] each.

  Raises:
    ValueError: naming `metric`, if either is not one-dimensional, is empty or holds NaN or
      infinite samples, or if either is digital silence throughout.
  """
  paired = []
  for name, waveform in (('reference', reference), ('estimate', estimate)):
    waveform = np.asarray(waveform, np.float32)
    if waveform.ndim != 1 or not waveform.size:
      raise ValueError(f'{metric}: the {name} must be a non-empty [time] waveform, got shape '
                       f'{waveform.shape}.')
    if not np.all(np.isfinite(waveform)):
      raise ValueError(f'{metric}: the {name} holds NaN or infinite samples.')
    paired.append(waveform)
  length = min(len(waveform) for waveform in paired)
  paired = [waveform[:length] for waveform in paired]
  for name, waveform in zip(('reference', 'estimate'), paired):
    # pesq fails on silence (it divides by the peak); STOI scores it 0.0, below what quiet
    # noise gets (~0.4).
    if not np.any(waveform):
      raise ValueError(f'{metric}: the {name} is digital silence over the common length '
                       f'({length} samples).')
  return paired[0], paired[1]


def wideband_pesq(reference: np.ndarray, estimate: np.ndarray, sample_rate: int) -> float:
  """Wide-band PESQ (ITU-T P.862.2, the `pesq` package's mode 'wb') of estimate vs reference.

  MOS-LQO from about 1.0 (unrelated noise) to 4.64 (identical signals). Compared over the
  common length, as the other metrics here. P.862.2 is defined at 16 kHz only: at any
  other sample_rate both signals are first resampled to 16 kHz with audio.resample (soxr);
  8 kHz audio so upsampled is scored as wide-band audio with an empty upper band.

  Args:
    reference, estimate: float32 [time] waveforms at sample_rate.
    sample_rate: Hz.

  Raises:
    ValueError: if the `pesq` package is missing, or the signals cannot be scored: not
      [time] waveforms, NaN or infinite samples, silence, shorter than 0.25 s, or no speech
      found by PESQ's voice activity detection.
  """
  try:
    import pesq  # pylint: disable=g-import-not-at-top,import-outside-toplevel; optional.
  except ImportError as error:
    raise ValueError("wide-band PESQ needs the pesq package: pip install "
                     "'wavenet-jax[metrics]'") from error
  reference, estimate = _paired_waveforms(reference, estimate, 'wide-band PESQ')
  reference = audio_lib.resample(reference, sample_rate, PESQ_SAMPLE_RATE)
  estimate = audio_lib.resample(estimate, sample_rate, PESQ_SAMPLE_RATE)
  try:
    return float(pesq.pesq(PESQ_SAMPLE_RATE, reference, estimate, 'wb'))
  except pesq.PesqError as error:
    # The C extension's message (bytes): "Buffer needs to be at least 1/4 of a second long",
    # "No utterances detected".
    message = error.args[0].decode() if error.args and isinstance(error.args[0], bytes) else error
    raise ValueError(f'wide-band PESQ of {len(reference)} samples at {PESQ_SAMPLE_RATE} Hz '
                     f'({len(reference) / PESQ_SAMPLE_RATE:.2f} s): {message}.') from error


def stoi(reference: np.ndarray, estimate: np.ndarray, sample_rate: int) -> float:
  """STOI (Taal et al., 2011; `pystoi.stoi`, extended=False) of estimate vs reference.

  Intelligibility from about 0 to 1 (identical signals), over the common length. pystoi
  resamples both to STOI's own 10 kHz itself and drops the frames more than 40 dB below
  the reference's loudest.

  Args:
    reference, estimate: float32 [time] waveforms at sample_rate.
    sample_rate: Hz.

  Raises:
    ValueError: if the `pystoi` package is missing, or the signals cannot be scored: not
      [time] waveforms, NaN or infinite samples, silence, or fewer than the 30 frames
      (0.4 s) of non-silent reference that STOI's shortest segment needs.
  """
  try:
    import pystoi  # pylint: disable=g-import-not-at-top,import-outside-toplevel; optional.
  except ImportError as error:
    raise ValueError("STOI needs the pystoi package: pip install "
                     "'wavenet-jax[metrics]'") from error
  reference, estimate = _paired_waveforms(reference, estimate, 'STOI')
  with warnings.catch_warnings():
    # Instead of raising, pystoi warns and returns 1e-5 when too little audio is left.
    warnings.filterwarnings('error', message='Not enough STFT frames', category=RuntimeWarning)
    try:
      return float(pystoi.stoi(reference, estimate, sample_rate, extended=False))
    except RuntimeWarning as error:
      raise ValueError(f'STOI of {len(reference)} samples at {sample_rate} Hz '
                       f'({len(reference) / sample_rate:.2f} s): fewer than 30 frames (0.4 s) '
                       'of the reference are within 40 dB of its loudest.') from error


def voiced_f0_hz(audio: np.ndarray, sample_rate: int) -> np.ndarray:
  """f0 of the voiced frames of a waveform: librosa.pyin(fmin=60, fmax=400); float [voiced]."""
  f0, voiced, _ = librosa.pyin(audio.astype(np.float32), fmin=F0_MIN_HZ, fmax=F0_MAX_HZ,
                               sr=sample_rate)
  return f0[voiced & np.isfinite(f0)]


def f0_agreement(reference_hz: np.ndarray, reference_voiced: np.ndarray,
                 estimate_hz: np.ndarray, estimate_voiced: np.ndarray) -> dict[str, Any]:
  """How an estimate's F0 track follows a reference's, frame for frame (the same framing).

  Args:
    reference_hz, estimate_hz: float [frames] F0 in Hz (values at unvoiced frames unused).
    reference_voiced, estimate_voiced: bool [frames] voicing decisions.

  Returns:
    {'voiced_in_both': frames voiced in both, 'f0_rmse_cents': RMS over them of
    1200 log2(estimate / reference) (None without such a frame), 'f0_correlation': Pearson
    correlation of their log-F0 (None under 2 such frames or a constant track),
    'voicing_agreement': fraction of all frames whose decisions agree}.
  """
  both = reference_voiced & estimate_voiced
  cents = 1200.0 * np.log2(estimate_hz[both] / reference_hz[both])
  rmse = float(np.sqrt(np.mean(np.square(cents)))) if both.any() else None
  correlation = None
  if both.sum() >= 2 and np.ptp(reference_hz[both]) > 0 and np.ptp(estimate_hz[both]) > 0:
    correlation = float(np.corrcoef(np.log(reference_hz[both]), np.log(estimate_hz[both]))[0, 1])
  return {'voiced_in_both': int(both.sum()), 'f0_rmse_cents': rmse,
          'f0_correlation': correlation,
          'voicing_agreement': float(np.mean(reference_voiced == estimate_voiced))}


def griffin_lim_from_log_mel(log_mel: np.ndarray, sample_rate: int, mel_config: Any,
                             num_samples: int, num_iters: int, seed: int = 0) -> np.ndarray:
  """Griffin-Lim reconstruction of audio.log_mel frames (librosa's mel_to_audio, seeded).

  audio.log_mel centres frame k on samples k * hop + hop / 2; librosa centres it on
  k * hop, so the reconstruction is delayed by hop / 2 to line up with the original.

  Args:
    log_mel: float32 [frames, n_mels] ln |mel| (not normalised).
    num_samples: length of the returned waveform.
    seed: of the random initial phase (mel_to_audio draws it from numpy's global state:
      its reconstructions, and their PESQ, differ from call to call).

  Returns:
    float32 [num_samples].
  """
  hop, n_fft = int(mel_config.hop_length), int(mel_config.n_fft)
  magnitudes = librosa.feature.inverse.mel_to_stft(
      np.exp(log_mel.T), sr=sample_rate, n_fft=n_fft, power=1.0, fmin=float(mel_config.fmin),
      fmax=float(mel_config.fmax))
  waveform = librosa.griffinlim(magnitudes, n_iter=num_iters, hop_length=hop, n_fft=n_fft,
                                random_state=seed)
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
