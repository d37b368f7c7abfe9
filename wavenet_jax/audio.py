"""Audio file I/O and the log-mel spectrogram.

Used by the dataset builder (decoding, resampling), the mel statistics, the plots and
metrics, and `features.LogMel` (the conditioning features a model is trained and sampled
with, normalised with the training set's statistics).

Features are computed with numpy and soxr alone, without librosa: librosa pulls in
numba, llvmlite and scikit-learn (~100 MB), more than a light accelerator install
can carry. Only silence trimming (config.data.top_db > 0) still needs it.

Mel frame convention: frame k of a span of audio covers the samples
[k * hop, (k + 1) * hop) of that span; its n_fft analysis window is centred on
the middle of that hop interval (samples outside the audio are zeros). A span of
`time` samples has ceil(time / hop) frames.
"""
import errno
import fcntl
import functools
import importlib.util
import io
import os
from typing import Any, BinaryIO
import wave

import numpy as np
import soundfile
import soxr

from wavenet_jax import storage

# Floor of the mel magnitudes before the log (-11.5 in log units).
MEL_FLOOR = 1e-5
# soxr's high quality: what librosa's 'soxr_hq' ran, so outputs equal the librosa-era ones.
RESAMPLE_QUALITY = 'HQ'


class AudioFileError(ValueError):
  """A file that cannot be used as audio; the message names the file."""

  def __init__(self, path: str | os.PathLike[str], reason: str):
    super().__init__(f'{path}: {reason}')
    self.path = path
    self.reason = reason


def load_audio(path: str | os.PathLike[str], sample_rate: int) -> np.ndarray:
  """Reads an audio file (WAV/FLAC/OGG...), mixes it to mono and resamples it.

  Args:
    path: the audio file.
    sample_rate: the sample rate to return, in Hz (resampled with soxr if the
      file's rate differs).

  Returns:
    float32 [time] waveform, nominally in [-1, 1].

  Raises:
    AudioFileError: naming the file, if it cannot be decoded, holds no samples,
      or holds NaN/inf samples.
  """
  try:
    audio, file_rate = soundfile.read(os.fspath(path), dtype='float32', always_2d=True)
  except (soundfile.LibsndfileError, RuntimeError, OSError, ValueError) as error:
    raise AudioFileError(path, f'cannot decode audio ({error})') from error
  if audio.size == 0:
    raise AudioFileError(path, 'the file holds no audio samples')
  if not np.all(np.isfinite(audio)):
    raise AudioFileError(path, 'the audio holds NaN or infinite samples')
  mono = audio.mean(axis=1, dtype=np.float32)
  return resample(mono, file_rate, sample_rate)


def _soxr_resample(audio: np.ndarray, from_rate: float, to_rate: float) -> np.ndarray:
  """float32 [time] -> float32 [ceil(time * to_rate / from_rate)]: librosa's 'soxr_hq' resample."""
  if from_rate == to_rate:
    return audio.astype(np.float32, copy=False)
  # The length librosa fixed its output to (soxr's own may differ by a sample), computed
  # the same way so that the rounding matches.
  size = int(np.ceil(len(audio) * (float(to_rate) / from_rate)))
  resampled = soxr.resample(audio, from_rate, to_rate, quality=RESAMPLE_QUALITY)[:size]
  resampled = np.pad(resampled, (0, size - len(resampled)))
  return resampled.astype(np.float32, copy=False)


def resample(audio: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
  """float32 [time] at from_rate -> float32 [ceil(time * to_rate / from_rate)] at to_rate (soxr)."""
  return _soxr_resample(audio, from_rate, to_rate)


def change_speed(audio: np.ndarray, factor: float) -> np.ndarray:
  """float32 [time] played `factor` times faster (pitch and tempo): [ceil(time / factor)].

  Resampled with soxr as if recorded at factor times the rate: factor 1.1 raises
  the pitch by 1.1 (1.65 semitones) and shortens the audio by 1.1.
  """
  return _soxr_resample(audio, factor, 1.0)


def write_wav(path: str | os.PathLike[str], audio: np.ndarray, sample_rate: int) -> None:
  """Writes float32 [time] audio in [-1, 1] as a 16-bit PCM mono WAV file (clipped).

  `path` is a local path or a URL such as gs://bucket/run/x.wav; its folder is created. The
  file is written whole or not at all (`storage.write_whole`).
  """
  pcm = np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0)
  encoded = io.BytesIO()
  soundfile.write(encoded, pcm, sample_rate, subtype='PCM_16', format='WAV')
  storage.write_whole(path, encoded.getvalue())


def partial_path(path: str | os.PathLike[str]) -> str:
  """STEM.partial.wav for STEM.wav: where a `StreamedWav` is written until it is finished."""
  stem, suffix = os.path.splitext(os.fspath(path))
  return f'{stem}.partial{suffix}'


class OutputBusyError(OSError):
  """Another process is writing the same WAV (it holds the lock on its partial file)."""


def _open_locked(path: str) -> BinaryIO:
  """path opened for reading and writing (created if missing) under an exclusive lock.

  Raises:
    OutputBusyError: another process holds the lock.
  """
  while True:
    file = os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT, 0o666), 'r+b')  # Not truncated yet.
    try:
      fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as error:
      file.close()
      raise OutputBusyError(errno.EBUSY, 'another process is writing it', path) from error
    try:
      if os.stat(path).st_ino == os.fstat(file.fileno()).st_ino:
        return file
    except FileNotFoundError:
      pass
    # The writer that held it renamed it into place in the meantime: lock a new one.
    file.close()


class StreamedWav:
  """A 16-bit PCM mono WAV written chunk by chunk, valid on disk after every chunk.

  The chunks go to `partial_path(path)` under an exclusive lock (a second writer of the same
  path gets OutputBusyError at once, not an interleaved file); the stdlib writer rewrites the
  header's lengths after each chunk and the file is flushed then, so a killed run leaves a
  playable WAV of the chunks done there (the kernel drops the lock with the process).
  `finish()` renames it to `path` (atomic: readers see the old file or the whole new one).
  Left without finish() on an error, the partial file is removed (a failed write may have left
  it corrupt); on KeyboardInterrupt it is kept, valid, like a killed run's.
  """

  def __init__(self, path: str | os.PathLike[str], sample_rate: int):
    self.path = os.fspath(path)
    self.partial = partial_path(path)
    self._wav = None
    self._file = _open_locked(self.partial)
    try:
      self._file.truncate(0)  # A killed run's partial file, now ours.
      self._wav = wave.open(self._file, 'wb')
      self._wav.setnchannels(1)
      self._wav.setsampwidth(2)
      self._wav.setframerate(sample_rate)
      self._wav.writeframes(b'')  # The header now, for 0 frames: a valid WAV from the start.
      self._file.flush()
    except BaseException:
      self._discard(keep=False)
      raise

  def append(self, audio: np.ndarray) -> None:
    """Appends float32 [time] audio in [-1, 1] (clipped)."""
    self._wav.writeframes(pcm16_frames(audio, self._wav.getframerate()))
    self._file.flush()

  def finish(self) -> None:
    """Completes the header and renames the partial file to the path."""
    self._wav.close()
    os.replace(self.partial, self.path)  # Still locked: no other writer has opened it.
    self._file.close()

  def _discard(self, keep: bool) -> None:
    """Closes the partial file, which is removed unless keep (and its header is complete)."""
    if self._wav is not None:
      try:
        self._wav.close()
      except OSError:  # The disk is full: the header may not count the frames on disk.
        keep = False
    if not keep:
      os.remove(self.partial)  # Before the lock goes: no other writer's file is removed.
    try:
      self._file.close()
    except OSError:
      pass  # The data is discarded or, kept, was flushed with the header.

  def __enter__(self) -> 'StreamedWav':
    return self

  def __exit__(self, exc_type, *unused_exc_info) -> None:
    if not self._file.closed:
      self._discard(keep=exc_type is KeyboardInterrupt)


def pcm16_frames(audio: np.ndarray, sample_rate: int) -> bytes:
  """float32 [time] in [-1, 1] (clipped) -> the little-endian 16-bit frames write_wav stores.

  The same conversion as write_wav (libsndfile's), for WAVs written chunk by chunk.
  """
  raw = io.BytesIO()
  soundfile.write(raw, np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0), sample_rate,
                  subtype='PCM_16', format='RAW', endian='LITTLE')
  return raw.getvalue()


def float_to_pcm16(audio: np.ndarray) -> np.ndarray:
  """float32 [time] in [-1, 1] (clipped) -> int16 [time]."""
  return np.round(np.clip(audio, -1.0, 1.0) * 32767.0).astype(np.int16)


def pcm16_to_float(pcm: np.ndarray) -> np.ndarray:
  """int16 [time] -> float32 [time] in [-1, 1) (the libsndfile convention, / 32768)."""
  return pcm.astype(np.float32) / 32768.0


def librosa_available() -> bool:
  """Whether librosa is installed (trim_silence needs it; features do not)."""
  return importlib.util.find_spec('librosa') is not None


def trim_silence(audio: np.ndarray, top_db: float) -> np.ndarray:
  """Drops leading/trailing audio quieter than top_db below the peak; float32 [time] -> [time'].

  Raises:
    ValueError: if librosa is not installed.
  """
  try:
    import librosa  # pylint: disable=g-import-not-at-top,import-outside-toplevel; heavy, only here.
  except ImportError as error:
    raise ValueError("config.data.top_db > 0 (silence trimming) needs librosa: "
                     "pip install 'wavenet-jax[librosa]'") from error
  trimmed, _ = librosa.effects.trim(audio, top_db=top_db)
  return trimmed


# Slaney's mel scale (librosa's htk=False): linear below 1 kHz, logarithmic above.
_SLANEY_HZ_PER_MEL = 200.0 / 3.0
_SLANEY_LOG_HZ = 1000.0
_SLANEY_LOG_MEL = _SLANEY_LOG_HZ / _SLANEY_HZ_PER_MEL
_SLANEY_LOG_STEP = np.log(6.4) / 27.0  # ln(Hz) per mel above 1 kHz.


def _hz_to_slaney_mel(hz: np.ndarray) -> np.ndarray:
  """float64 [...] Hz -> float64 [...] Slaney mels."""
  hz = np.asarray(hz, np.float64)
  log_part = (_SLANEY_LOG_MEL
              + np.log(np.maximum(hz, _SLANEY_LOG_HZ) / _SLANEY_LOG_HZ) / _SLANEY_LOG_STEP)
  return np.where(hz >= _SLANEY_LOG_HZ, log_part, hz / _SLANEY_HZ_PER_MEL)


def _slaney_mel_to_hz(mel: np.ndarray) -> np.ndarray:
  """float64 [...] Slaney mels -> float64 [...] Hz (inverse of _hz_to_slaney_mel)."""
  log_part = _SLANEY_LOG_HZ * np.exp(
      _SLANEY_LOG_STEP * (np.maximum(mel, _SLANEY_LOG_MEL) - _SLANEY_LOG_MEL))
  return np.where(mel >= _SLANEY_LOG_MEL, log_part, mel * _SLANEY_HZ_PER_MEL)


@functools.lru_cache(maxsize=8)
def _mel_basis(sample_rate: int, n_fft: int, n_mels: int, fmin: float,
               fmax: float) -> np.ndarray:
  """float32 [n_mels, n_fft // 2 + 1] Slaney mel filterbank (= librosa.filters.mel's defaults).

  Triangles between n_mels + 2 edges equally spaced on the Slaney mel scale, each scaled
  by 2 / its width in Hz (Slaney's area normalisation: about equal energy per band).
  """
  fft_hz = np.fft.rfftfreq(n_fft, d=1.0 / sample_rate)
  edges_hz = _slaney_mel_to_hz(np.linspace(_hz_to_slaney_mel(fmin), _hz_to_slaney_mel(fmax),
                                           n_mels + 2))
  widths = np.diff(edges_hz)
  ramps = edges_hz[:, np.newaxis] - fft_hz  # [n_mels + 2, n_fft // 2 + 1]
  rising = -ramps[:-2] / widths[:-1, np.newaxis]
  falling = ramps[2:] / widths[1:, np.newaxis]
  weights = np.maximum(0.0, np.minimum(rising, falling))
  weights *= (2.0 / (edges_hz[2:] - edges_hz[:-2]))[:, np.newaxis]
  return weights.astype(np.float32)


def _stft_magnitudes(span: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
  """float32 [(len(span) - n_fft) // hop + 1, n_fft // 2 + 1]: |FFT| of periodic-Hann frames.

  The frames of `span` start every hop samples and lie inside it (no padding).
  """
  window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)  # Periodic Hann.
  frames = np.lib.stride_tricks.sliding_window_view(span, n_fft)[::hop]
  magnitudes = np.empty((len(frames), n_fft // 2 + 1), np.float32)
  # Blocks of ~256 KB of float64 frames (as librosa.stft): they stay in cache; whole-span
  # temporaries (page-faulted afresh each call) made log_mel ~1.5x slower. float64 as
  # librosa: a float32 FFT moves the log-mel of a pure tone's quiet bands by up to 2e-4.
  block = max(1, 2**15 // n_fft)
  for first in range(0, len(frames), block):
    spectrum = np.fft.rfft(frames[first:first + block] * window, axis=-1)
    np.abs(spectrum, out=magnitudes[first:first + block])
  return magnitudes


def num_mel_frames(num_samples: int, hop_length: int) -> int:
  """Number of mel frames of a span of num_samples samples: ceil(num_samples / hop)."""
  return -(-num_samples // hop_length)


def log_mel(audio: np.ndarray, sample_rate: int, mel_config: Any, start: int = 0,
            num_samples: int | None = None) -> np.ndarray:
  """Log-magnitude mel spectrogram of audio[start:start + num_samples].

  Frame k covers the samples [start + k * hop, start + (k + 1) * hop); its
  n_fft window is centred on that interval and reads the audio on either side
  of the span where there is some (zeros beyond the ends of `audio`), so the
  frames of a crop equal the matching frames of the whole clip when start is a
  multiple of hop.

  Args:
    audio: float32 [time] waveform.
    sample_rate: its sample rate in Hz.
    mel_config: an object with n_mels, hop_length, n_fft, fmin, fmax
      (config.data.mel).
    start: first sample of the span.
    num_samples: length of the span; None = to the end of `audio`.

  Returns:
    float32 [ceil(num_samples / hop), n_mels]: ln(max(|mel|, MEL_FLOOR)).
  """
  hop, n_fft = int(mel_config.hop_length), int(mel_config.n_fft)
  if n_fft < hop:
    raise ValueError(f'mel n_fft ({n_fft}) must be at least hop_length ({hop}).')
  if num_samples is None:
    num_samples = len(audio) - start
  frames = num_mel_frames(num_samples, hop)
  n_mels = int(mel_config.n_mels)
  if frames == 0:
    return np.zeros((0, n_mels), np.float32)
  # Window of frame k: [start + k * hop + hop / 2 - n_fft / 2, ... + n_fft).
  window_start = start - (n_fft - hop) // 2
  window_stop = window_start + n_fft + (frames - 1) * hop
  span = np.zeros(window_stop - window_start, dtype=np.float32)
  source_start, source_stop = max(window_start, 0), min(window_stop, len(audio))
  if source_stop > source_start:
    span[source_start - window_start:source_stop - window_start] = audio[source_start:source_stop]
  magnitudes = _stft_magnitudes(span, n_fft, hop)
  basis = _mel_basis(sample_rate, n_fft, n_mels, float(mel_config.fmin),
                     float(mel_config.fmax))
  # einsum, not BLAS matmul: multi-threaded OpenBLAS on this small product is up to 10x
  # slower when the input pipeline's reader threads already keep every core busy.
  mel = np.einsum('mf,tf->tm', basis, magnitudes)
  return np.log(np.maximum(mel, MEL_FLOOR))
