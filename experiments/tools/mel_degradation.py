"""The degradation of experiments/tools/degrade_mels.py (GTA in miniature), without its flags:
tests import it in a process where other tools' flags (--workdir) are defined."""
import zlib

import numpy as np


def degrade(log_mel: np.ndarray, smooth_frames: int, noise_std: float,
            rng: np.random.Generator) -> np.ndarray:
  """float32 [frames, n_mels] log-mel -> the same averaged over time, plus Gaussian noise.

  Frame k becomes the mean of frames k - smooth_frames // 2 .. k + smooth_frames // 2 (the
  first and last frame repeated beyond the ends), plus noise_std * N(0, 1).
  """
  half = smooth_frames // 2
  padded = np.pad(log_mel, ((half, half), (0, 0)), mode='edge')
  smoothed = np.lib.stride_tricks.sliding_window_view(padded, smooth_frames, axis=0).mean(-1)
  return (smoothed + noise_std * rng.standard_normal(smoothed.shape)).astype(np.float32)


def file_rng(seed: int, relative_path: str) -> np.random.Generator:
  """The noise of one file: from the seed and its path only (not the order of the files)."""
  return np.random.default_rng([seed, zlib.crc32(relative_path.encode())])
