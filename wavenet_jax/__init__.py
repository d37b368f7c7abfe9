"""wavenet-jax: WaveNet (van den Oord et al., 2016) as Flax Linen modules."""
from wavenet_jax import mulaw
from wavenet_jax.models import WaveNet, dilations, receptive_field
from wavenet_jax.sampler import generate

__all__ = ['WaveNet', 'dilations', 'generate', 'mulaw', 'receptive_field']
