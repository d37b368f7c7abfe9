"""The clips a run samples while it trains: workdir/samples/step_N.wav and TensorBoard audio.

Each clip is conditioned on the run's first crop (of the validation split, of the training
split when there is none): its speaker and, for a vocoder, its mel frames, so that clips of
successive steps can be compared. Process 0 alone generates and writes; every process takes
part in gathering the parameters.
"""
from typing import Any, Optional

import jax
import numpy as np
from absl import logging
from etils import epath
from jax.experimental import multihost_utils

from wavenet_jax import audio as audio_lib
from wavenet_jax import input_pipeline
from wavenet_jax import summaries
from wavenet_jax import synthesis
from wavenet_jax.models import WaveNet

# The crop entries that condition a clip (those the model takes).
_CONDITIONING_KEYS = ('speaker', 'mel')


def conditioning(dataset: input_pipeline.PreparedDataset, seed: int,
                 crops: dict[str, Any]) -> dict[str, np.ndarray]:
  """{'speaker': int32 [1], 'mel': float32 [1, frames, n_mels]} (those the model takes).

  Read on this process alone from the first crop (`PreparedDataset.first_crop`).
  """
  crop = dataset.first_crop(seed=seed, **crops)
  return {key: value for key, value in crop.items() if key in _CONDITIONING_KEYS}


def generate(model: WaveNet, params: Any, rng: jax.Array, num_samples: int,
             clip_conditioning: dict[str, np.ndarray]) -> np.ndarray:
  """A float32 [num_samples] waveform sampled from the model on this process alone.

  Args:
    clip_conditioning: from `conditioning`; a mel-conditioned clip lasts at most as long as
      its mel.
  """
  local_cond = clip_conditioning.get('mel')
  if local_cond is not None:
    num_samples = min(num_samples, local_cond.shape[1] * model.hop_length)
  # The waveform starts with the sampler's silent start sample.
  return synthesis.synthesize(model, {'params': params}, rng, num_samples=num_samples - 1,
                              global_cond=clip_conditioning.get('speaker'),
                              local_cond=local_cond)[0]


def write(workdir: str, writer: summaries.SummaryWriter, model: WaveNet, params: Any,
          rng: jax.Array, step: int, seconds: float, sample_rate: int,
          clip_conditioning: Optional[dict[str, np.ndarray]]) -> None:
  """Samples the clip of `step` and writes it to workdir/samples and TensorBoard (process 0).

  Args:
    params: the (sharded) parameters to sample with; rng: the run's key data (sharded).
    Every process calls this: the parameters are gathered from all of them.
  """
  params, rng_data = multihost_utils.process_allgather((params, rng), tiled=True)
  if jax.process_index() != 0:
    return
  key = jax.random.fold_in(jax.random.wrap_key_data(rng_data), step)
  clip = generate(model, params, key, int(seconds * sample_rate), clip_conditioning)
  path = epath.Path(workdir) / 'samples' / f'step_{step:08d}.wav'
  audio_lib.write_wav(path, clip, sample_rate)
  writer.audio('generated', clip, step, sample_rate=sample_rate)
  logging.info('step %d  wrote %.2f s generated clip %s', step, clip.size / sample_rate, path)
