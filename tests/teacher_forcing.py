"""Teacher-forced outputs of the sampler's cached step, to compare with the parallel forward."""
from typing import Any, Optional

import jax
import jax.numpy as jnp

from wavenet_jax import sampler
from wavenet_jax.models import WaveNet


@jax.jit
def _teacher_forced_logits(state: sampler.SamplerState, next_inputs: jax.Array) -> jax.Array:

  def choose(_, time, logits, next_input):
    del time
    return None, next_input, logits

  _, logits = sampler._scan_steps(  # pylint: disable=protected-access
      state.decoder, state.conditioning, state.cache, next_inputs.shape[0], choose, None,
      next_inputs)
  return jnp.swapaxes(logits, 0, 1)


def cached_logits(model: WaveNet, variables: Any, audio: jax.Array,
                  global_cond: Optional[jax.Array] = None, local_cond: Optional[jax.Array] = None,
                  batched_past_taps_max_batch: Optional[int] = None) -> jax.Array:
  """Teacher-forced outputs of the cached step; equal to `model.apply(variables, audio, ...)`.

  Args:
    audio: int32 classes of the model's codec [batch, time].
    global_cond, local_cond: as for the model.
    batched_past_taps_max_batch: overrides the `Decoder`'s (0: the per-layer path).

  Returns:
    float32 outputs [batch, time, output_size]; outputs[:, t] predicts audio[:, t + 1].
  """
  audio = jnp.asarray(audio, jnp.int32)
  state = sampler.init_state(model, variables, batch_size=audio.shape[0], prompt=audio[:, :1],
                             global_cond=global_cond, local_cond=local_cond)
  if batched_past_taps_max_batch is not None:
    state = state.replace(decoder=state.decoder.replace(
        batched_past_taps_max_batch=batched_past_taps_max_batch))
  next_inputs = jnp.concatenate([audio[:, 1:], audio[:, -1:]], axis=1).T
  return _teacher_forced_logits(state, next_inputs)
