"""wavenet-jax: WaveNet (van den Oord et al., 2016) as Flax Linen modules."""
from wavenet_jax import codecs
from wavenet_jax import distributions
from wavenet_jax import mulaw
from wavenet_jax.models import WaveNet, dilations, receptive_field
from wavenet_jax.sampler import generate

__all__ = ['WaveNet', 'codecs', 'dilations', 'distributions', 'generate', 'mulaw',
           'receptive_field']
