"""The WaveNet model: dilated causal convolutions with gated units (Flax Linen).

Architecture (van den Oord et al., 2016):

  classes x [B, T] int32 ──embed──> h_0 [B, T, residual]   (a table lookup; for the
                                                          mixture head x's value, scaled)
  for each layer l (dilation d_l):
    z   = Σ_j W_j h_l[t - (k-1-j) d_l] + b        dilated causal conv, k taps
        + V_g speaker_embedding + V_c local_cond   conditioning (optional)
    a_l = tanh(z_filter) ⊙ σ(z_gate)               gated unit, [B, T, gate/2]
    h_{l+1} = h_l + W_res a_l                      residual connection
  skips = Σ_l W_skip,l a_l                         one matmul over concat(a_l)
  outputs = W_2 relu(W_1 relu(skips))              [B, T, output_size]

Output heads (`distributions`, the model's `distribution`): 'mulaw_softmax', the paper's,
logits of 256 μ-law classes; 'mixture_of_logistics', the parameters of a discretized mixture
of logistics over 16-bit PCM classes (output_size = 3 * num_mixtures), whose input is the
previous sample's value.

`logits[:, t]` (the head's outputs) is the distribution of `x[:, t + 1]` and depends on
`x[:, :t + 1]` only: every convolution is causal (left zero padding of its input), so the model
output has the same length as its input.

Layout: between the embedding and the skip sum, activations are channel-major,
[channels, batch, time]. Every matmul is then `kernel.T @ x` on a [channels,
batch * time] view, and each weight gradient `dz @ x.T` reads both operands in
their stored layout (with [batch, time, channels] activations XLA's CPU backend
copies a transposed operand for every weight gradient). The time shifts of the
dilated taps and the tap and skip concatenations are then along contiguous axes too.

One-sample step (Paine et al., 2016): generating x[t + 1] needs layer l's inputs
h_l[t - d_l], ..., h_l[t - (k-1) d_l] besides h_l[t] only, so the model keeps
them in a cache (`DecodeState`) and `Decoder.step` costs O(layers) work per sample,
independent of the receptive field (the parallel forward recomputes all of it). The
`Decoder` holds the parameters re-laid out once, so that nothing is sliced, stacked or
re-embedded per sample, rather than stepping through `Module.apply`:

  decoder = model.decoder(variables)
  bias = decoder.gate_bias(batch_size, global_cond)  # per generation
  state = decoder.init_state(batch_size)  # at t = 0; or decoder.prefill(x[:, :t], ...)
  state, logits = decoder.step(state, x[:, t], bias, local_feature_t)

The cache is one ring buffer `ring` [rows, batch, residual] (one gather and one
scatter per step for all layers): layer l owns rows offsets[l] .. offsets[l] +
(k-1) d_l, and h_l[t] sits in row offsets[l] + t mod (k-1) d_l. A step at time t:
  1. gathers every layer's past taps and multiplies them with their kernels
     before the layers run (they do not depend on x[t], so all layers' can be
     multiplied at once): one batched matmul up to batch
     `Decoder.batched_past_taps_max_batch`, one per layer above;
  2. runs the layers on x[t], the embedding folded into the first layer's
     current tap (a table [num_classes, gate]: a lookup instead of a matmul; for the
     mixture head's scalar input, x[t]'s value times a row);
  3. writes the new layer inputs h_l[t] into the ring;
  4. applies one skip matmul over the concatenated gate outputs and the model's
     output head: outputs [batch, output_size] for x[t + 1], equal to the
     parallel forward's logits[:, t].
"""
import dataclasses
import functools
from typing import Any, Mapping, Optional, Sequence

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from wavenet_jax import codecs
from wavenet_jax import distributions

Array = jax.Array
Dtype = Any

# Logical axis names of parameters and activations. `sharding.py` maps them to
# mesh axes with rules from the config (data parallel: all replicated).
# The axis of the codec's classes: its name in config.sharding_rules stays 'vocab' (saved
# configs name it).
CLASSES = 'vocab'
RESIDUAL = 'residual'
GATE = 'gate'
SKIP = 'skip'
TAPS = 'taps'
LAYERS = 'layers'
SPEAKERS = 'speakers'
COND = 'cond'
HEAD = 'head'


def dilations(num_layers: int, num_stacks: int) -> tuple[int, ...]:
  """Dilation of each layer: 1, 2, ..., 2^(num_layers/num_stacks - 1), num_stacks times."""
  if num_layers <= 0 or num_stacks <= 0 or num_layers % num_stacks:
    raise ValueError(
        f'num_layers ({num_layers}) must be a positive multiple of num_stacks ({num_stacks}).')
  per_stack = num_layers // num_stacks
  return tuple(2**i for i in range(per_stack)) * num_stacks


def receptive_field(num_layers: int, num_stacks: int, kernel_size: int) -> int:
  """Number of input samples that `logits[:, t]` depends on (x[t - rf + 1 .. t])."""
  return (kernel_size - 1) * sum(dilations(num_layers, num_stacks)) + 1


def mulaw_sinusoid_init(key: Array, shape: tuple[int, int], dtype: Dtype = jnp.float32) -> Array:
  """Embedding table [num_classes, channels] whose rows are sinusoids of the class's value.

  μ-law classes are uniform in the companded domain, so class c stands for
  y_c = 2c / (num_classes - 1) - 1 in [-1, 1]. Row c is
  sqrt(2) sin(f_i y_c + phase_i) over channels i, with frequencies f_i spaced
  geometrically from π/2 (one smooth ramp over the whole range) to 32π (neighbouring
  classes told apart) and random phases from `key`: unit variance per entry like
  normal(1.0), but neighbouring classes start with neighbouring vectors: with
  normal(1.0) rows the network must first learn the order of the classes from
  data, so early training is slower.
  """
  num_classes, channels = shape
  values = jnp.linspace(-1.0, 1.0, num_classes)
  frequencies = (jnp.pi / 2) * jnp.geomspace(1.0, 64.0, channels)
  phases = jax.random.uniform(key, (channels,), minval=0.0, maxval=2 * jnp.pi)
  return (jnp.sqrt(2.0) * jnp.sin(values[:, None] * frequencies + phases)).astype(dtype)


EMBEDDING_INITS = {'normal': nn.initializers.normal(1.0), 'mulaw_sinusoid': mulaw_sinusoid_init}


def gated_unit(z: Array, axis: int = -1) -> Array:
  """tanh(filter) ⊙ σ(gate), the halves of z along `axis` (gate -> gate/2 channels)."""
  # Unit-stride slices, not jnp.split: Mosaic GPU (pallas_sampler.py) lowers neither split
  # nor a slice with strides.
  half = z.shape[axis] // 2
  filter_index, gate_index = [slice(None)] * z.ndim, [slice(None)] * z.ndim
  filter_index[axis], gate_index[axis] = slice(None, half), slice(half, None)
  filter_part, gate_part = z[tuple(filter_index)], z[tuple(gate_index)]
  return jnp.tanh(filter_part) * jax.nn.sigmoid(gate_part)


def causal_shift(x: Array, shift: int) -> Array:
  """x[..., t - shift] along the last (time) axis, zeros for t < shift."""
  if shift == 0:
    return x
  time = x.shape[-1]
  return jnp.pad(x, [(0, 0)] * (x.ndim - 1) + [(shift, 0)])[..., :time]


def channel_matmul(kernel: Array, x: Array) -> Array:
  """kernel [in, out] applied to channel-major x [in, batch, time] -> [out, batch, time]."""
  channels, batch_size, time = x.shape
  return (kernel.T @ x.reshape(channels, batch_size * time)).reshape(-1, batch_size, time)


def _dense(features: int, axes: tuple[str, str], use_bias: bool, dtype: Dtype,
           param_dtype: Dtype, name: str) -> nn.Dense:
  return nn.Dense(
      features, use_bias=use_bias, dtype=dtype, param_dtype=param_dtype,
      kernel_init=nn.with_logical_partitioning(nn.initializers.lecun_normal(), axes),
      bias_init=nn.with_logical_partitioning(nn.initializers.zeros_init(), (axes[1],)),
      name=name)


class ChannelDense(nn.Module):
  """nn.Dense over the channels of channel-major [in, batch, time] activations.

  Its parameters are those of nn.Dense: kernel [in, features], bias [features].
  """
  features: int
  axes: tuple[str, str]
  use_bias: bool
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    """[in, batch, time] -> [features, batch, time] in self.dtype."""
    kernel = self.param(
        'kernel', nn.with_logical_partitioning(nn.initializers.lecun_normal(), self.axes),
        (x.shape[0], self.features), self.param_dtype)
    x, kernel = nn.dtypes.promote_dtype(x, kernel, dtype=self.dtype)
    y = channel_matmul(kernel, x)
    if not self.use_bias:
      return y
    bias = self.param(
        'bias', nn.with_logical_partitioning(nn.initializers.zeros_init(), (self.axes[1],)),
        (self.features,), self.param_dtype)
    return y + bias.astype(self.dtype)[:, None, None]


class ResidualLayer(nn.Module):
  """One dilated causal conv layer with gated unit and residual connection."""
  dilation: int
  kernel_size: int
  residual_channels: int
  gate_channels: int
  has_residual_output: bool
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, h: Array, global_embedding: Optional[Array],
               local_features: Optional[Array]) -> tuple[Optional[Array], Array]:
    """Applies the layer (channel-major activations).

    Args:
      h: [residual, batch, time] layer input.
      global_embedding: [batch, speaker_embedding] or None.
      local_features: [conditioning_channels, batch, time] (upsampled) or None.

    Returns:
      (h_next [residual, batch, time] or None on the last layer,
       gate output [gate/2, batch, time]).
    """
    kernel = self.param(
        'kernel',
        nn.with_logical_partitioning(
            nn.initializers.variance_scaling(1.0, 'fan_in', 'truncated_normal',
                                             in_axis=(0, 1), out_axis=2),
            (TAPS, RESIDUAL, GATE)),
        (self.kernel_size, self.residual_channels, self.gate_channels), self.param_dtype)
    bias = self.param('bias', nn.with_logical_partitioning(nn.initializers.zeros_init(), (GATE,)),
                      (self.gate_channels,), self.param_dtype)
    kernel, bias = nn.dtypes.promote_dtype(kernel, bias, dtype=self.dtype)
    h = h.astype(self.dtype)
    # All taps in one matmul: [k*residual, gate].T @ [x[t-(k-1)d]; ...; x[t-d]; x[t]].
    taps = [causal_shift(h, (self.kernel_size - 1 - j) * self.dilation)
            for j in range(self.kernel_size)]
    z = (channel_matmul(kernel.reshape(-1, self.gate_channels), jnp.concatenate(taps, axis=0))
         + bias[:, None, None])
    if global_embedding is not None:
      z = z + _dense(self.gate_channels, (COND, GATE), False, self.dtype, self.param_dtype,
                     'global_proj')(global_embedding).T[:, :, None]
    if local_features is not None:
      z = z + ChannelDense(self.gate_channels, (COND, GATE), False, self.dtype, self.param_dtype,
                           name='local_proj')(local_features)
    gate_out = gated_unit(z, axis=0)
    if not self.has_residual_output:
      return None, gate_out
    residual = ChannelDense(self.residual_channels, (GATE, RESIDUAL), True, self.dtype,
                            self.param_dtype, name='residual_proj')(gate_out)
    return h + residual, gate_out


class LocalConditioningUpsampler(nn.Module):
  """Frame-rate features -> audio-rate features.

  Frame k covers samples [k * hop_length, (k + 1) * hop_length): each frame is
  spread over exactly its own samples (transposed convs with kernel = stride, or
  repetition), so no frame leaks into another frame's samples.

  With projection_channels > 0 the frames are first mapped by one linear layer to that
  many channels, at frame rate: many wide features (the paper's 153 linguistic channels)
  then cost the upsampling and every layer's conditioning projection, both at audio rate,
  a few dozen channels instead.
  """
  hop_length: int
  upsample_scales: Sequence[int]
  method: str = 'transposed'  # 'transposed' (learned) or 'repeat'.
  projection_channels: int = 0
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, features: Array) -> Array:
    """[batch, frames, C] -> [batch, frames * hop_length, conditioning channels]
    (projection_channels, or C without a projection)."""
    if self.method not in ('transposed', 'repeat'):
      raise ValueError(f"upsample method must be 'transposed' or 'repeat', got {self.method!r}.")
    if self.projection_channels > 0:
      features = _dense(self.projection_channels, (None, COND), True, self.dtype,
                        self.param_dtype, 'projection')(features)
    if self.method == 'repeat':
      return jnp.repeat(features, self.hop_length, axis=1).astype(self.dtype)
    product = 1
    for scale in self.upsample_scales:
      product *= scale
    if product != self.hop_length:
      raise ValueError(f'upsample_scales {tuple(self.upsample_scales)} multiply to {product}, '
                       f'not hop_length={self.hop_length}.')
    x = features.astype(self.dtype)
    channels = features.shape[-1]
    for i, scale in enumerate(self.upsample_scales):
      x = nn.ConvTranspose(
          channels, (scale,), strides=(scale,), padding='VALID', dtype=self.dtype,
          param_dtype=self.param_dtype,
          kernel_init=nn.with_logical_partitioning(nn.initializers.lecun_normal(),
                                                   (None, None, COND)),
          bias_init=nn.with_logical_partitioning(nn.initializers.zeros_init(), (COND,)),
          name=f'upsample_{i}')(x)
      x = nn.leaky_relu(x, 0.4)
    return x


def check_conditioning(model: 'WaveNet', batch_size: int, global_cond: Optional[Array],
                       local_cond: Optional[Array], time: Optional[int] = None) -> None:
  """One-line ValueErrors for conditioning inputs that do not fit the model.

  Concrete inputs are also checked for values (ids in range, finite features); traced
  ones (inside jit) only for shapes.

  Args:
    model: the WaveNet.
    batch_size: of the audio being modelled.
    global_cond: int32 speaker ids [batch] (required iff num_speakers > 0).
    local_cond: float [batch, frames, local_cond_channels] (required iff
      local_cond_channels > 0).
    time: samples the local features must cover (frames * hop_length >= time);
      None: any number of frames (a generation checks its coverage per chunk).
  """
  if model.num_speakers > 0:
    if global_cond is None:
      raise ValueError('This WaveNet is speaker-conditioned (num_speakers > 0): '
                       'pass global_cond speaker ids [batch].')
    if global_cond.shape != (batch_size,):
      raise ValueError(f'global_cond must have shape ({batch_size},), got {global_cond.shape}.')
    if not isinstance(global_cond, jax.core.Tracer):  # Concrete ids: checked once per call.
      ids = np.asarray(global_cond)
      if ids.min() < 0 or ids.max() >= model.num_speakers:
        raise ValueError(f'global_cond speaker ids must lie in [0, {model.num_speakers - 1}], '
                         f'got {sorted(set(ids.tolist()))}.')
  elif global_cond is not None:
    raise ValueError('global_cond given, but this WaveNet has num_speakers=0.')
  if model.local_cond_channels > 0:
    if local_cond is None:
      raise ValueError('This WaveNet is locally conditioned (local_cond_channels > 0): '
                       'pass local_cond [batch, frames, channels].')
    if (local_cond.ndim != 3 or local_cond.shape[0] != batch_size
        or local_cond.shape[2] != model.local_cond_channels
        or (time is not None and local_cond.shape[1] * model.hop_length < time)):
      frames, covering = 'frames', ''
      if time is not None:
        frames, covering = f'>= {-(-time // model.hop_length)}', f' for {time} samples'
      raise ValueError(f'local_cond must be [{batch_size}, {frames}, {model.local_cond_channels}]'
                       f'{covering}, got {local_cond.shape}.')
    if (not isinstance(local_cond, jax.core.Tracer)
        and not np.all(np.isfinite(np.asarray(local_cond)))):
      raise ValueError('local_cond holds NaN or infinite features; the model needs finite ones.')
  elif local_cond is not None:
    raise ValueError('local_cond given, but this WaveNet has local_cond_channels=0.')


class WaveNet(nn.Module):
  """WaveNet over audio classes with optional global and local conditioning.

  Attributes:
    num_layers: total number of dilated conv layers.
    num_stacks: the dilations 1, 2, ..., 2^(num_layers/num_stacks - 1) repeat this often.
    kernel_size: taps of each dilated conv (2 in the paper).
    residual_channels: channels of the residual stream.
    gate_channels: output channels of each dilated conv; the gated unit halves them.
    skip_channels: channels of the skip sum and the output head.
    output: the output head's name, 'mulaw_softmax' (logits of μ-law classes) or
      'mixture_of_logistics' (a discretized mixture of logistics over linear PCM classes,
      with the previous sample's value as the input); the head itself is `distribution`.
    num_classes: classes of the head's codec (`codec`); None: the default, 256 μ-law
      classes or 65,536 (16-bit) PCM levels.
    preemphasis: p in [0, 1): the classes are of the pre-emphasised waveform x[t] - p x[t - 1]
      (the codec filters and de-emphasises); 0: none.
    num_mixtures: logistic components of the mixture head.
    log_scale_min: floor of the mixture's log scales. At -14 (scale 8.3e-7) a component
      centred on a 16-bit bin (half-width 1/65536 = 18 scales) puts all but 3e-8 of its
      mass in it, so the floor does not limit the likelihood, while 1/scale stays below
      1.2e6 (bounded gradients for a target far out in a tail).
    num_speakers: > 0 enables global conditioning on `global_cond` speaker ids.
    speaker_embedding_dim: size of the learned speaker embedding.
    local_cond_channels: > 0 enables local conditioning on `local_cond` features.
    hop_length: audio samples per local-conditioning frame.
    upsample_method: 'transposed' (learned) or 'repeat'.
    upsample_scales: strides of the transposed convs; their product is hop_length.
    local_cond_projection: > 0: the features are projected to this many channels at frame
      rate before upsampling (`LocalConditioningUpsampler`); 0: upsampled as they are.
    embedding_init: initialiser of the input embedding (softmax head), a key of
      EMBEDDING_INITS: 'normal' (independent N(0, 1) rows) or 'mulaw_sinusoid' (see
      mulaw_sinusoid_init).
    dtype: computation dtype (e.g. bfloat16); logits are returned as float32.
    param_dtype: parameter dtype.
  """
  num_layers: int = 20
  num_stacks: int = 2
  kernel_size: int = 2
  residual_channels: int = 64
  gate_channels: int = 128
  skip_channels: int = 256
  output: str = 'mulaw_softmax'
  num_classes: Optional[int] = None
  preemphasis: float = 0.0
  num_mixtures: int = 10
  log_scale_min: float = -14.0
  num_speakers: int = 0
  speaker_embedding_dim: int = 16
  local_cond_channels: int = 0
  hop_length: int = 256
  upsample_method: str = 'transposed'
  upsample_scales: Sequence[int] = (4, 4, 4, 4)
  local_cond_projection: int = 0
  embedding_init: str = 'normal'
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  def __post_init__(self):
    head = self.distribution  # One-line ValueErrors for an unknown head or its fields.
    if self.num_classes is None:  # The head's default, fixed before Flax copies the module.
      object.__setattr__(self, 'num_classes', head.num_classes)
    super().__post_init__()

  @property
  def distribution(self) -> distributions.Head:
    """The output head (`distributions.make` of output, num_classes, num_mixtures,
    log_scale_min): output size, codec, likelihoods and sampling."""
    return distributions.make(self.output, self.num_classes, self.num_mixtures,
                              self.log_scale_min)

  @property
  def codec(self) -> codecs.Codec:
    """How waveforms map to this model's classes (μ-law or linear PCM, and pre-emphasis)."""
    return dataclasses.replace(self.distribution.codec, preemphasis=self.preemphasis)

  @property
  def output_size(self) -> int:
    """Head outputs per position: num_classes logits or 3 * num_mixtures parameters."""
    return self.distribution.output_size

  @property
  def dilations(self) -> tuple[int, ...]:
    return dilations(self.num_layers, self.num_stacks)

  @property
  def receptive_field(self) -> int:
    return receptive_field(self.num_layers, self.num_stacks, self.kernel_size)

  @property
  def conditioning_channels(self) -> int:
    """Channels of the upsampled local features each layer reads (0: none)."""
    if self.local_cond_channels <= 0:
      return 0
    return self.local_cond_projection or self.local_cond_channels

  @property
  def silence_class(self) -> int:
    """The class that decodes to (almost) 0.0; the sampler starts from it."""
    return self.codec.silence_class

  def setup(self):
    if self.gate_channels % 2:
      raise ValueError(f'gate_channels must be even, got {self.gate_channels}.')
    if self.local_cond_projection < 0:
      raise ValueError(f'local_cond_projection must be >= 0 (0: none), '
                       f'got {self.local_cond_projection}.')
    if self.embedding_init not in EMBEDDING_INITS:
      raise ValueError(f'embedding_init must be one of {sorted(EMBEDDING_INITS)}, '
                       f'got {self.embedding_init!r}.')
    if not self.distribution.value_input:
      self.embedding = nn.Embed(
          self.num_classes, self.residual_channels, dtype=self.dtype,
          param_dtype=self.param_dtype,
          embedding_init=nn.with_logical_partitioning(EMBEDDING_INITS[self.embedding_init],
                                                      (CLASSES, RESIDUAL)))
    else:
      self.input_proj = _dense(self.residual_channels, (CLASSES, RESIDUAL), True, self.dtype,
                               self.param_dtype, 'input_proj')
    num_layers = len(self.dilations)
    self.layers = [
        ResidualLayer(d, self.kernel_size, self.residual_channels, self.gate_channels,
                      has_residual_output=i < num_layers - 1, dtype=self.dtype,
                      param_dtype=self.param_dtype, name=f'layer_{i}')
        for i, d in enumerate(self.dilations)]
    self.skip_kernel = self.param(
        'skip_kernel',
        nn.with_logical_partitioning(
            nn.initializers.variance_scaling(1.0, 'fan_in', 'truncated_normal',
                                             in_axis=(0, 1), out_axis=2),
            (LAYERS, GATE, SKIP)),
        (num_layers, self.gate_channels // 2, self.skip_channels), self.param_dtype)
    self.skip_bias = self.param(
        'skip_bias', nn.with_logical_partitioning(nn.initializers.zeros_init(), (SKIP,)),
        (self.skip_channels,), self.param_dtype)
    self.head_hidden = _dense(self.skip_channels, (SKIP, HEAD), True, self.dtype,
                              self.param_dtype, 'head_hidden')
    self.head_out = _dense(self.output_size, (HEAD, CLASSES), True, self.dtype, self.param_dtype,
                           'head_out')
    if self.num_speakers > 0:
      self.speaker_embedding = nn.Embed(
          self.num_speakers, self.speaker_embedding_dim, dtype=self.dtype,
          param_dtype=self.param_dtype,
          embedding_init=nn.with_logical_partitioning(nn.initializers.normal(1.0),
                                                      (SPEAKERS, COND)))
    if self.local_cond_channels > 0:
      self.upsampler = LocalConditioningUpsampler(
          self.hop_length, tuple(self.upsample_scales), self.upsample_method,
          self.local_cond_projection, self.dtype, self.param_dtype)

  def conditioning(self, batch_size: int, time: int, global_cond: Optional[Array],
                   local_cond: Optional[Array]) -> tuple[Optional[Array], Optional[Array]]:
    """Checks the conditioning inputs (`check_conditioning`) and maps them to per-layer inputs.

    Args:
      batch_size, time: of the audio being modelled.
      global_cond: int32 speaker ids [batch] (required iff num_speakers > 0).
      local_cond: float [batch, frames, local_cond_channels] with
        frames * hop_length >= time (required iff local_cond_channels > 0).

    Returns:
      (speaker embedding [batch, speaker_embedding] or None,
       upsampled local features [batch, time, conditioning_channels] or None).
    """
    check_conditioning(self, batch_size, global_cond, local_cond, time)
    global_embedding = local_features = None
    if global_cond is not None:
      global_embedding = self.speaker_embedding(global_cond)
    if local_cond is not None:
      local_features = self.upsampler(local_cond)[:, :time]
    return global_embedding, local_features

  def embed(self, audio: Array) -> Array:
    """Input layer: int32 classes [...] -> [..., residual] (a table, or the value scaled)."""
    if not self.distribution.value_input:
      return self.embedding(audio)
    return self.input_proj(self.codec.values(audio)[..., None])

  def head(self, skips: Array) -> Array:
    """Output head: skip sum [..., skip] -> float32 outputs [..., output_size]."""
    hidden = self.head_hidden(nn.relu(skips))
    return self.head_out(nn.relu(hidden)).astype(jnp.float32)

  def decoder(self, variables: Any) -> 'Decoder':
    """The one-sample step of this model with these variables {'params': ...} (`Decoder`)."""
    return Decoder.create(self, variables)

  def __call__(self, audio: Array, global_cond: Optional[Array] = None,
               local_cond: Optional[Array] = None) -> Array:
    """Parallel (teacher-forced) forward pass.

    Args:
      audio: int32 classes of the model's codec [batch, time].
      global_cond: int32 speaker ids [batch], for speaker-conditioned models.
      local_cond: float [batch, frames, local_cond_channels] at hop_length samples
        per frame, for locally conditioned models.

    Returns:
      float32 head outputs ("logits") [batch, time, output_size]; logits[:, t] is the
      distribution of audio[:, t + 1] (`distributions`).
    """
    batch_size, time = audio.shape
    global_embedding, local_features = self.conditioning(batch_size, time, global_cond,
                                                         local_cond)
    h = jnp.transpose(self.embed(audio), (2, 0, 1))  # Channel-major from here on.
    if local_features is not None:
      local_features = jnp.transpose(local_features, (2, 0, 1))
    gate_outputs = []
    for layer in self.layers:
      h, gate_out = layer(h, global_embedding, local_features)
      gate_outputs.append(gate_out)
    # Σ_l W_skip,l.T a_l as one matmul over the concatenated gate outputs.
    skip_kernel, skip_bias = nn.dtypes.promote_dtype(self.skip_kernel, self.skip_bias,
                                                     dtype=self.dtype)
    skips = (channel_matmul(skip_kernel.reshape(-1, self.skip_channels),
                            jnp.concatenate(gate_outputs, axis=0)) + skip_bias[:, None, None])
    return self.head(jnp.transpose(skips, (1, 2, 0)))


# ---------------------------------------------------------------------------
# The one-sample step (see the module docstring).


@flax.struct.dataclass
class DecodeState:
  """The decode cache of a batch of sequences before the input at `time`.

  Attributes:
    ring: [rows, batch, residual] every layer's past inputs, in the model's compute dtype
      (layer l's h_l[t] in row offsets[l] + t mod (k-1) d_l; see the module docstring).
    time: int32 scalar, the time of the next input.
  """
  ring: Array
  time: Array


def _is_layer_input(module: nn.Module, method_name: str) -> bool:
  """capture_intermediates filter: the input layer and every residual layer's output."""
  return ((isinstance(module, ResidualLayer) and method_name == '__call__')
          or (isinstance(module, WaveNet) and method_name == 'embed'))


@flax.struct.dataclass
class Decoder:
  """A WaveNet's one-sample step: its parameters laid out for `step`, in the compute dtype.

  Build with `WaveNet.decoder(variables)`.

  Attributes:
    model: the WaveNet.
    embedding: [num_classes, residual] input embedding (class input), or for a head whose
      input is the value x: [2, residual], h_0 = x * embedding[0] + embedding[1].
    input_table: [num_classes, gate] embedding @ current tap of layer 0; for a value
      input [2, gate], likewise x * input_table[0] + input_table[1].
    past_kernels: [layers, (kernel_size - 1) * residual, gate] the taps on past
      inputs (oldest first), one block per layer.
    current_kernels: per layer from layer 1 on, [residual, gate]: the tap on the
      current input (layer 0's is folded into `input_table`). Separate arrays, so
      that the step does not slice stacked weights on every sample.
    residual_kernels: per layer but the last, [gate / 2, residual].
    residual_biases: per layer but the last, [residual].
    skip_kernel: [layers * gate / 2, skip] over the concatenated gate outputs.
    skip_bias: [skip].
    local_kernel: [conditioning_channels, layers * gate], or None (no local conditioning).
    variables: the model's unboxed variables, for its output head and upsampler.
    batched_past_taps_max_batch: the largest batch whose past taps `step` multiplies in
      one batched matmul (larger: one matmul per layer, as XLA's CPU batched matmul is
      slower than separate ones there).
  """
  model: WaveNet = flax.struct.field(pytree_node=False)
  embedding: Array
  input_table: Array
  past_kernels: Array
  current_kernels: tuple[Array, ...]
  residual_kernels: tuple[Array, ...]
  residual_biases: tuple[Array, ...]
  skip_kernel: Array
  skip_bias: Array
  local_kernel: Optional[Array]
  variables: Any
  batched_past_taps_max_batch: int = flax.struct.field(pytree_node=False, default=16)

  @classmethod
  def create(cls, model: WaveNet, variables: Any) -> 'Decoder':
    """Lays out the parameters (see the attributes).

    Args:
      model: the WaveNet.
      variables: its variables {'params': ...} (from `model.init` or a checkpoint; boxed
        or plain).
    """
    if not isinstance(variables, Mapping) or 'params' not in variables:
      keys = sorted(variables) if isinstance(variables, Mapping) else type(variables).__name__
      raise ValueError("variables must be the model's variables {'params': params} (from "
                       f'model.init or a checkpoint), got {keys}.')
    variables = nn.meta.unbox(variables)
    params = variables['params']
    layers = _layer_params(model, params)
    dtype = model.dtype
    k, residual, gate = model.kernel_size, model.residual_channels, model.gate_channels
    kernels = jnp.stack([layer['kernel'] for layer in layers]).astype(dtype)  # [L, k, R, G]
    if model.distribution.value_input:
      embedding = jnp.stack([params['input_proj']['kernel'][0],
                             params['input_proj']['bias']]).astype(dtype)
    else:
      embedding = params['embedding']['embedding'].astype(dtype)
    local_kernel = None
    if model.local_cond_channels > 0:
      local_kernel = jnp.concatenate([layer['local_proj']['kernel'] for layer in layers],
                                     axis=1).astype(dtype)
    return cls(
        model=model,
        embedding=embedding,
        input_table=embedding @ kernels[0, k - 1],  # Value input: [x, 1] @ that, per row.
        past_kernels=kernels[:, :k - 1].reshape(model.num_layers, (k - 1) * residual, gate),
        current_kernels=tuple(kernels[1:, k - 1]),
        residual_kernels=tuple(layer['residual_proj']['kernel'].astype(dtype)
                               for layer in layers[:-1]),
        residual_biases=tuple(layer['residual_proj']['bias'].astype(dtype)
                              for layer in layers[:-1]),
        skip_kernel=params['skip_kernel'].reshape(-1, model.skip_channels).astype(dtype),
        skip_bias=params['skip_bias'].astype(dtype),
        local_kernel=local_kernel,
        variables=variables)

  def gate_bias(self, batch_size: int, global_cond: Optional[Array]) -> Array:
    """Each layer's gate bias plus its global conditioning term, constant over a generation.

    Args:
      batch_size: sequences generated together.
      global_cond: int32 speaker ids [batch_size], or None (no global conditioning).

    Returns:
      [layers, batch_size, gate] in the model's compute dtype.
    """
    model = self.model
    layers = _layer_params(model, self.variables['params'])
    bias = jnp.stack([layer['bias'] for layer in layers])
    bias = jnp.broadcast_to(bias[:, None, :].astype(model.dtype),
                            (model.num_layers, batch_size, model.gate_channels))
    if global_cond is None:
      return bias
    speaker = model.apply(self.variables, global_cond,
                          method=lambda m, ids: m.speaker_embedding(ids))
    global_kernels = jnp.stack([layer['global_proj']['kernel'] for layer in layers])
    return bias + jnp.einsum('be,leg->lbg', speaker, global_kernels.astype(model.dtype))

  def upsample(self, local_cond: Array) -> Array:
    """The model's upsampler: float [batch, frames, local_cond_channels] -> [batch,
    frames * hop_length, conditioning_channels]."""
    return self.model.apply(self.variables, local_cond, method=lambda m, f: m.upsampler(f))

  def head(self, skips: Array) -> Array:
    """The model's output head: [batch, skip] -> float32 [batch, output_size]."""
    return self.model.apply(self.variables, skips, method=WaveNet.head)

  def init_state(self, batch_size: int) -> DecodeState:
    """The cache before any input (all past inputs zero, as the causal padding has them):
    ring [rows, batch_size, residual] of zeros, time 0."""
    return DecodeState(ring=_empty_ring(self.model, batch_size), time=jnp.zeros((), jnp.int32))

  def prefill(self, audio: Array, global_cond: Optional[Array],
              local_cond: Optional[Array]) -> DecodeState:
    """The cache after feeding `audio` (times 0 .. T-1), by one parallel forward pass.

    Only the last receptive_field - 1 samples (rounded back to a frame start) feed
    the cached inputs h_l[T - (k-1) d_l .. T-1], so only they are run.

    Args:
      audio: int32 classes [batch, T] with T >= 1.
      global_cond, local_cond: as for the model (local_cond frames from time 0).

    Returns:
      The state at time T.
    """
    return DecodeState(ring=_prefilled_ring(self.model, self.variables, audio, global_cond,
                                            local_cond),
                       time=jnp.asarray(audio.shape[1], jnp.int32))

  def step(self, state: DecodeState, sample: Array, bias: Array,
           local_feature: Optional[Array]) -> tuple[DecodeState, Array]:
    """Feeds x[state.time]: the next state and the head's outputs for x[time + 1].

    Args:
      state: the cache (from `init_state`, `prefill` or the previous step).
      sample: int32 [batch], x[time].
      bias: [layers, batch, gate], from `gate_bias`.
      local_feature: upsampled local features of this time, float [batch,
        conditioning_channels], or None (no local conditioning).

    Returns:
      (the state at time + 1, float32 outputs [batch, output_size]: the parallel
      forward's logits[:, time]).
    """
    model = self.model
    num_layers, batch_size = model.num_layers, sample.shape[0]
    read_rows, write_rows = _ring_rows(model, state.time)
    past = state.ring[read_rows].reshape(num_layers, model.kernel_size - 1, batch_size, -1)
    past = jnp.swapaxes(past, 1, 2).reshape(num_layers, batch_size, -1)
    # The past taps do not depend on x[time]: all layers' in one batched matmul
    # [L, B, (k-1) R] @ [L, (k-1) R, G], or per layer for large batches.
    if batch_size <= self.batched_past_taps_max_batch:
      z_past = jnp.einsum('lbr,lrg->lbg', past, self.past_kernels) + bias
    else:
      z_past = [past[l] @ self.past_kernels[l] + bias[l] for l in range(num_layers)]
    if local_feature is not None:
      local = local_feature.astype(model.dtype) @ self.local_kernel
      local = local.reshape(batch_size, num_layers, -1)
      z_past = [z_past[l] + local[:, l] for l in range(num_layers)]
    if model.distribution.value_input:
      value = model.codec.values(sample).astype(model.dtype)[:, None]
      h = value * self.embedding[0] + self.embedding[1]
      z = z_past[0] + (value * self.input_table[0] + self.input_table[1])
    else:
      h = self.embedding[sample]
      z = z_past[0] + self.input_table[sample]
    layer_inputs, gate_outputs = [], []
    for l in range(num_layers):
      if l > 0:
        z = z_past[l] + h @ self.current_kernels[l - 1]
      gate_out = gated_unit(z)
      layer_inputs.append(h)
      gate_outputs.append(gate_out)
      if l < num_layers - 1:
        # Bias add first, then the residual: XLA then fuses the add into the matmul instead of
        # recomputing the whole residual sum inside every later layer's fusion.
        h = (gate_out @ self.residual_kernels[l] + self.residual_biases[l]) + h
    ring = state.ring.at[write_rows].set(jnp.stack(layer_inputs))
    skips = jnp.concatenate(gate_outputs, axis=-1) @ self.skip_kernel + self.skip_bias
    return DecodeState(ring=ring, time=state.time + 1), self.head(skips)


def _ring_layout(model: WaveNet) -> tuple[np.ndarray, np.ndarray]:
  """Row offset and row count ((k-1) * dilation) of every layer's cache: int32 [layers] each."""
  sizes = np.asarray(model.dilations, np.int32) * (model.kernel_size - 1)
  offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int32)
  return offsets, sizes


def _ring_rows(model: WaveNet, time: Array) -> tuple[Array, Array]:
  """Rows to read (h_l[t - m d_l], m = k-1 .. 1) and write (h_l[t]) at `time`.

  Returns:
    (read rows int32 [layers * (kernel_size - 1)], layer-major, oldest tap first;
     write rows int32 [layers]).
  """
  offsets, sizes = _ring_layout(model)
  dilations_ = np.asarray(model.dilations, np.int32)
  back = np.arange(model.kernel_size - 1, 0, -1, dtype=np.int32)  # k-1, ..., 1
  lags = (dilations_[:, None] * back[None, :])  # [layers, k-1]
  read = offsets[:, None] + jnp.remainder(time - lags, sizes[:, None])
  write = offsets + jnp.remainder(time, sizes)
  return read.reshape(-1), write


def _empty_ring(model: WaveNet, batch_size: int) -> Array:
  """[rows, batch_size, residual] zeros in the model's compute dtype."""
  _, sizes = _ring_layout(model)
  return jnp.zeros((int(sizes.sum()), batch_size, model.residual_channels), model.dtype)


@functools.partial(jax.jit, static_argnums=0)
def _prefilled_ring(model: WaveNet, variables: Any, audio: Array, global_cond: Optional[Array],
                    local_cond: Optional[Array]) -> Array:
  """The ring of `Decoder.prefill` (variables unboxed)."""
  batch_size, time = audio.shape
  start = max(0, time - model.receptive_field + 1)
  if local_cond is not None:
    start -= start % model.hop_length
    local_cond = local_cond[:, start // model.hop_length:]
  _, intermediates = model.apply(variables, audio[:, start:], global_cond, local_cond,
                                 capture_intermediates=_is_layer_input)
  intermediates = intermediates['intermediates']
  # [batch, time, residual]: the embedding, then the (channel-major) layer outputs.
  layer_inputs = [intermediates['embed'][0]]
  layer_inputs += [jnp.transpose(intermediates[f'layer_{l}']['__call__'][0][0], (1, 2, 0))
                   for l in range(model.num_layers - 1)]
  offsets, sizes = _ring_layout(model)
  rows, values = [], []
  for h, offset, size in zip(layer_inputs, offsets, sizes):
    kept = min(int(size), time - start)
    times = np.arange(time - kept, time)
    rows.append(offset + times % size)
    values.append(jnp.moveaxis(h[:, h.shape[1] - kept:], 1, 0))
  ring = _empty_ring(model, batch_size)
  return ring.at[np.concatenate(rows)].set(jnp.concatenate(values).astype(model.dtype))


def _layer_params(model: WaveNet, params: Any) -> list[Any]:
  """Each residual layer's parameters, in order; ValueError if `params` is not the model's."""
  input_layer = 'input_proj' if model.distribution.value_input else 'embedding'
  missing = [name for name in (input_layer, 'skip_kernel', 'skip_bias', 'head_hidden', 'head_out',
                               *(f'layer_{l}' for l in range(model.num_layers)))
             if name not in params]
  if missing:
    raise ValueError(f'variables do not match the model: no parameters {missing}.')
  return [params[f'layer_{l}'] for l in range(model.num_layers)]


def model_from_config(model_config: Any, data_config: Any, speakers: Sequence[str]) -> WaveNet:
  """The WaveNet of an experiment config (config.model, config.data).

  Args:
    model_config: config.model (layers, channels, conditioning switches, pre-emphasis, dtype).
    data_config: config.data (the local conditioning's features: `features.channels_and_hop`).
    speakers: the dataset's speaker names; their number sizes the speaker embedding
      when config.model.global_conditioning.
  """
  if model_config.global_conditioning and not speakers:
    raise ValueError('config.model.global_conditioning=True, but the dataset has no speakers.')
  local = bool(model_config.local_conditioning)
  # Here, not at the top: features reads audio files (soundfile, soxr), which `import
  # wavenet_jax` does not load.
  from wavenet_jax import features as features_lib  # pylint: disable=import-outside-toplevel
  channels, hop_length = features_lib.channels_and_hop(data_config)
  return WaveNet(
      num_layers=model_config.num_layers,
      num_stacks=model_config.num_stacks,
      kernel_size=model_config.kernel_size,
      residual_channels=model_config.residual_channels,
      gate_channels=model_config.gate_channels,
      skip_channels=model_config.skip_channels,
      num_speakers=len(speakers) if model_config.global_conditioning else 0,
      speaker_embedding_dim=model_config.speaker_embedding_dim,
      local_cond_channels=channels if local else 0,
      hop_length=hop_length,
      upsample_method=model_config.upsample_method,
      upsample_scales=tuple(model_config.upsample_scales),
      local_cond_projection=model_config.local_cond_projection,
      embedding_init=model_config.embedding_init,
      output=model_config.output,
      num_mixtures=model_config.num_mixtures,
      log_scale_min=model_config.log_scale_min,
      preemphasis=model_config.preemphasis,
      dtype=jnp.dtype(model_config.dtype))
