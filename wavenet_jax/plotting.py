"""Pictures of audio: waveform above log-mel spectrogram, written as PNG."""
import io
import os
from typing import Any

import numpy as np

from wavenet_jax import audio as audio_lib
from wavenet_jax import storage


def save_waveform_and_spectrogram(path: str | os.PathLike[str], audio: np.ndarray,
                                  sample_rate: int, mel_config: Any, title: str = '') -> None:
  """Writes a PNG: the waveform on top, its log-mel spectrogram below.

  Args:
    path: the PNG file to write: a local path or a URL such as gs://bucket/run/x.png; its
      folder is created. It is written whole or not at all (`storage.write_whole`).
    audio: float32 [time] waveform in [-1, 1].
    sample_rate: in Hz.
    mel_config: n_mels, hop_length, n_fft, fmin, fmax (config.data.mel).
    title: figure title.
  """
  # Imported here, so that importing the package does not import matplotlib.
  import matplotlib  # pylint: disable=g-import-not-at-top,import-outside-toplevel
  matplotlib.use('Agg')  # Files only: no display on servers and TPU hosts.
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top,import-outside-toplevel

  mel = audio_lib.log_mel(audio, sample_rate, mel_config)
  seconds = len(audio) / sample_rate
  figure, (wave_axes, mel_axes) = plt.subplots(
      2, 1, figsize=(10, 5), sharex=True, gridspec_kw={'height_ratios': [1, 2]})
  wave_axes.plot(np.arange(len(audio)) / sample_rate, audio, linewidth=0.3)
  wave_axes.set_ylim(-1.0, 1.0)
  wave_axes.set_ylabel('amplitude')
  if title:
    wave_axes.set_title(title)
  image = mel_axes.imshow(mel.T, origin='lower', aspect='auto', cmap='magma',
                          extent=(0.0, seconds, 0, mel.shape[1]))
  mel_axes.set_xlabel('time (s)')
  mel_axes.set_ylabel('mel bin')
  figure.colorbar(image, ax=[wave_axes, mel_axes], label='ln |mel|', pad=0.01)
  encoded = io.BytesIO()
  figure.savefig(encoded, format='png', dpi=100)
  plt.close(figure)
  storage.write_whole(path, encoded.getvalue())
