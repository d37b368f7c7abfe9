"""The WaveNet model: dilated causal convolutions with gated units (Flax Linen).

Architecture (van den Oord et al., 2016):

  classes x [B, T] int32 ──embed──> h_0 [B, T, residual]
  for each layer l (dilation d_l):
    z   = Σ_j W_j h_l[t - (k-1-j) d_l] + b        dilated causal conv, k taps
        + V_g speaker_embedding + V_c local_cond   conditioning (optional)
    a_l = tanh(z_filter) ⊙ σ(z_gate)               gated unit, [B, T, gate/2]
    h_{l+1} = h_l + W_res a_l                      residual connection
  skips = Σ_l W_skip,l a_l                         one matmul over concat(a_l)
  logits = W_2 relu(W_1 relu(skips))               [B, T, num_classes]

`logits[:, t]` is the distribution of `x[:, t + 1]` and depends on `x[:, :t + 1]`
only: every convolution is causal (left zero padding of its input), so the model
output has the same length as its input.

Layout: between the embedding and the skip sum, activations are channel-major,
[channels, batch, time]. Every matmul is then `kernel.T @ x` on a [channels,
batch * time] view, and each weight gradient `dz @ x.T` reads both operands in
their stored layout; with [batch, time, channels] activations XLA's CPU backend
copied a transposed operand for every weight gradient (B1 training on a 2-core
CPU: 14% less CPU time per step, see experiments/benchmarks/train_step.py). The
time shifts of the dilated taps and the tap and skip concatenations are then
along contiguous axes too.

Parameter layout (the cached sampler in `sampler.py` reads it):
  embedding/embedding                 [num_classes, residual]
  layer_{l}/kernel                    [kernel_size, residual, gate]  (taps oldest first)
  layer_{l}/bias                      [gate]
  layer_{l}/global_proj/kernel        [speaker_embedding, gate]      (global cond)
  layer_{l}/local_proj/kernel         [local_cond_channels, gate]    (local cond)
  layer_{l}/residual_proj/{kernel,bias} [gate/2, residual], [residual] (not on the last layer)
  skip_kernel                         [num_layers, gate/2, skip]
  skip_bias                           [skip]
  head_hidden/{kernel,bias}           [skip, skip], [skip]
  head_out/{kernel,bias}              [skip, num_classes], [num_classes]
  speaker_embedding/embedding         [num_speakers, speaker_embedding]
  upsample_{i}/{kernel,bias}          transposed-conv upsampler of local_cond
"""
from typing import Any, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

Array = jax.Array
Dtype = Any

# Logical axis names of parameters and activations. `sharding.py` maps them to
# mesh axes with rules from the config (data parallel: all replicated).
EMBED = 'vocab'
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
  normal(1.0), but neighbouring classes start with neighbouring vectors. With
  normal(1.0) rows the network must first learn the order of the 256 classes from
  data; this start lowered held-out bits/sample by ~0.25 after 5 minutes of CPU
  training (experiments/speech_cpu.py).
  """
  num_classes, channels = shape
  values = jnp.linspace(-1.0, 1.0, num_classes)
  frequencies = (jnp.pi / 2) * jnp.geomspace(1.0, 64.0, channels)
  phases = jax.random.uniform(key, (channels,), minval=0.0, maxval=2 * jnp.pi)
  return (jnp.sqrt(2.0) * jnp.sin(values[:, None] * frequencies + phases)).astype(dtype)


EMBEDDING_INITS = {'normal': nn.initializers.normal(1.0), 'mulaw_sinusoid': mulaw_sinusoid_init}


def gated_unit(z: Array, axis: int = -1) -> Array:
  """tanh(filter) ⊙ σ(gate), the halves of z along `axis` (gate -> gate/2 channels)."""
  filter_part, gate_part = jnp.split(z, 2, axis=axis)
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
      local_features: [local_cond_channels, batch, time] (upsampled) or None.

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
  """
  hop_length: int
  upsample_scales: Sequence[int]
  method: str = 'transposed'  # 'transposed' (learned) or 'repeat'.
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, features: Array) -> Array:
    """[batch, frames, channels] -> [batch, frames * hop_length, channels]."""
    if self.method == 'repeat':
      return jnp.repeat(features, self.hop_length, axis=1).astype(self.dtype)
    if self.method != 'transposed':
      raise ValueError(f"upsample method must be 'transposed' or 'repeat', got {self.method!r}.")
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


class WaveNet(nn.Module):
  """WaveNet over μ-law classes with optional global and local conditioning.

  Attributes:
    num_layers: total number of dilated conv layers.
    num_stacks: the dilations 1, 2, ..., 2^(num_layers/num_stacks - 1) repeat this often.
    kernel_size: taps of each dilated conv (2 in the paper).
    residual_channels: channels of the residual stream.
    gate_channels: output channels of each dilated conv; the gated unit halves them.
    skip_channels: channels of the skip sum and the output head.
    num_classes: μ-law classes (256).
    num_speakers: > 0 enables global conditioning on `global_cond` speaker ids.
    speaker_embedding_dim: size of the learned speaker embedding.
    local_cond_channels: > 0 enables local conditioning on `local_cond` features.
    hop_length: audio samples per local-conditioning frame.
    upsample_method: 'transposed' (learned) or 'repeat'.
    upsample_scales: strides of the transposed convs; their product is hop_length.
    embedding_init: initialiser of the input embedding, a key of EMBEDDING_INITS:
      'normal' (independent N(0, 1) rows) or 'mulaw_sinusoid' (see mulaw_sinusoid_init).
    dtype: computation dtype (e.g. bfloat16); logits are returned as float32.
    param_dtype: parameter dtype.
  """
  num_layers: int = 20
  num_stacks: int = 2
  kernel_size: int = 2
  residual_channels: int = 64
  gate_channels: int = 128
  skip_channels: int = 256
  num_classes: int = 256
  num_speakers: int = 0
  speaker_embedding_dim: int = 16
  local_cond_channels: int = 0
  hop_length: int = 256
  upsample_method: str = 'transposed'
  upsample_scales: Sequence[int] = (4, 4, 4, 4)
  embedding_init: str = 'normal'
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @property
  def dilations(self) -> tuple[int, ...]:
    return dilations(self.num_layers, self.num_stacks)

  @property
  def receptive_field(self) -> int:
    return receptive_field(self.num_layers, self.num_stacks, self.kernel_size)

  def setup(self):
    if self.gate_channels % 2:
      raise ValueError(f'gate_channels must be even, got {self.gate_channels}.')
    if self.embedding_init not in EMBEDDING_INITS:
      raise ValueError(f'embedding_init must be one of {sorted(EMBEDDING_INITS)}, '
                       f'got {self.embedding_init!r}.')
    self.embedding = nn.Embed(
        self.num_classes, self.residual_channels, dtype=self.dtype, param_dtype=self.param_dtype,
        embedding_init=nn.with_logical_partitioning(EMBEDDING_INITS[self.embedding_init],
                                                    (EMBED, RESIDUAL)))
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
    self.head_out = _dense(self.num_classes, (HEAD, EMBED), True, self.dtype, self.param_dtype,
                           'head_out')
    if self.num_speakers > 0:
      self.speaker_embedding = nn.Embed(
          self.num_speakers, self.speaker_embedding_dim, dtype=self.dtype,
          param_dtype=self.param_dtype,
          embedding_init=nn.with_logical_partitioning(nn.initializers.normal(1.0),
                                                      (SPEAKERS, COND)))
    if self.local_cond_channels > 0:
      self.upsampler = LocalConditioningUpsampler(
          self.hop_length, tuple(self.upsample_scales), self.upsample_method, self.dtype,
          self.param_dtype)

  def conditioning(self, batch_size: int, time: int, global_cond: Optional[Array],
                   local_cond: Optional[Array]) -> tuple[Optional[Array], Optional[Array]]:
    """Checks the conditioning inputs and maps them to per-layer inputs.

    Args:
      batch_size, time: of the audio being modelled.
      global_cond: int32 speaker ids [batch] (required iff num_speakers > 0).
      local_cond: float [batch, frames, local_cond_channels] with
        frames * hop_length >= time (required iff local_cond_channels > 0).

    Returns:
      (speaker embedding [batch, speaker_embedding] or None,
       upsampled local features [batch, time, local_cond_channels] or None).
    """
    global_embedding = local_features = None
    if self.num_speakers > 0:
      if global_cond is None:
        raise ValueError('This WaveNet is speaker-conditioned (num_speakers > 0): '
                         'pass global_cond speaker ids [batch].')
      if global_cond.shape != (batch_size,):
        raise ValueError(f'global_cond must have shape ({batch_size},), got {global_cond.shape}.')
      global_embedding = self.speaker_embedding(global_cond)
    elif global_cond is not None:
      raise ValueError('global_cond given, but this WaveNet has num_speakers=0.')
    if self.local_cond_channels > 0:
      if local_cond is None:
        raise ValueError('This WaveNet is locally conditioned (local_cond_channels > 0): '
                         'pass local_cond [batch, frames, channels].')
      if (local_cond.ndim != 3 or local_cond.shape[0] != batch_size
          or local_cond.shape[2] != self.local_cond_channels
          or local_cond.shape[1] * self.hop_length < time):
        raise ValueError(
            f'local_cond must be [{batch_size}, >= {-(-time // self.hop_length)}, '
            f'{self.local_cond_channels}] for {time} samples, got {local_cond.shape}.')
      local_features = self.upsampler(local_cond)[:, :time]
    elif local_cond is not None:
      raise ValueError('local_cond given, but this WaveNet has local_cond_channels=0.')
    return global_embedding, local_features

  def head(self, skips: Array) -> Array:
    """Output head: skip sum [..., skip] -> float32 logits [..., num_classes]."""
    hidden = self.head_hidden(nn.relu(skips))
    return self.head_out(nn.relu(hidden)).astype(jnp.float32)

  def __call__(self, audio: Array, global_cond: Optional[Array] = None,
               local_cond: Optional[Array] = None) -> Array:
    """Parallel (teacher-forced) forward pass.

    Args:
      audio: int32 μ-law classes [batch, time].
      global_cond: int32 speaker ids [batch], for speaker-conditioned models.
      local_cond: float [batch, frames, local_cond_channels] at hop_length samples
        per frame, for locally conditioned models.

    Returns:
      float32 logits [batch, time, num_classes]; logits[:, t] predicts audio[:, t + 1].
    """
    batch_size, time = audio.shape
    global_embedding, local_features = self.conditioning(batch_size, time, global_cond,
                                                         local_cond)
    h = jnp.transpose(self.embedding(audio), (2, 0, 1))  # Channel-major from here on.
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


def model_from_config(model_config: Any, data_config: Any, speakers: Sequence[str]) -> WaveNet:
  """The WaveNet of an experiment config (config.model, config.data).

  Args:
    model_config: config.model (layers, channels, conditioning switches, dtype).
    data_config: config.data (mel settings for local conditioning).
    speakers: the dataset's speaker names; their number sizes the speaker embedding
      when config.model.global_conditioning.
  """
  if model_config.global_conditioning and not speakers:
    raise ValueError('config.model.global_conditioning=True, but the dataset has no speakers.')
  local = bool(model_config.local_conditioning)
  return WaveNet(
      num_layers=model_config.num_layers,
      num_stacks=model_config.num_stacks,
      kernel_size=model_config.kernel_size,
      residual_channels=model_config.residual_channels,
      gate_channels=model_config.gate_channels,
      skip_channels=model_config.skip_channels,
      num_speakers=len(speakers) if model_config.global_conditioning else 0,
      speaker_embedding_dim=model_config.speaker_embedding_dim,
      local_cond_channels=data_config.mel.n_mels if local else 0,
      hop_length=data_config.mel.hop_length,
      upsample_method=model_config.upsample_method,
      upsample_scales=tuple(model_config.upsample_scales),
      # Checkpoints written before this key existed lack it; a restored model's
      # parameters do not depend on the initialiser.
      embedding_init=model_config.get('embedding_init', 'normal'),
      dtype=jnp.dtype(model_config.dtype))
