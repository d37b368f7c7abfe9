"""Training loop: data-parallel (jax.jit + NamedSharding), orbax checkpoints, metrics.

`train_and_evaluate(config, workdir)` trains config's WaveNet on config.data, resuming from
the latest checkpoint in workdir/checkpoints. The same code runs on one CPU, many devices
and many processes: the state is created already sharded over the mesh (sharding.py), each
process feeds its own rows of the global batch, and the jitted step donates the state.

Loss: the masked mean negative log-likelihood, in nats, of audio[:, 1:] under the head's
distributions logits[:, :-1] (`distributions.next_sample_nats`: μ-law softmax cross-entropy, or
the discretized mixture of logistics over 16-bit classes) with weights mask[:, 1:] (1 = real
audio); bits/sample = nats / ln 2 (evaluation.nats_to_bits). Validation also reports bits per
μ-law class (`Head.mulaw_log_prob`), the unit both heads share. samples/s counts the
audio samples the model reads: global batch x (receptive field + segment length) per step.
"""
import functools
import itertools
import json
import math
import os
import signal
import sys
import threading
import time
from typing import Any, Callable, Iterator, Optional

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import logging
from etils import epath
from jax.experimental import multihost_utils

from wavenet_jax import audio as audio_lib
from wavenet_jax import checkpointing
from wavenet_jax import distributions
from wavenet_jax import evaluation
from wavenet_jax import input_pipeline
from wavenet_jax import sharding
from wavenet_jax import summaries
from wavenet_jax import synthesis
from wavenet_jax import workdir_lock
from wavenet_jax.dataset_info import DatasetInfo
from wavenet_jax.models import EMBEDDING_INITS, WaveNet, model_from_config

Batch = dict[str, jax.Array]
Metrics = dict[str, jax.Array]


class TrainingDivergedError(RuntimeError):
  """The loss (or the parameters) became NaN/inf; no checkpoint was written since."""


# train.py's exit status after a preemption (SIGTERM, Ctrl-C or orbax's preemption signal)
# saved a checkpoint: the run is unfinished and resumes when started again (EX_TEMPFAIL).
PREEMPTED_EXIT_STATUS = 75


class TrainingPreempted(Exception):
  """Training stopped early on a preemption signal, after saving a checkpoint.

  Attributes:
    step: the step of the saved checkpoint.
  """

  def __init__(self, step: int, directory: str):
    super().__init__(f'preempted: saved checkpoint {step} in {directory}; start the same '
                     'command again to resume.')
    self.step = step


@flax.struct.dataclass
class TrainState:
  """Everything a run needs to continue exactly where it stopped.

  Attributes:
    step: int32 [] number of optimizer updates done (= the input position).
    params: the model parameters.
    opt_state: the optax state.
    ema_params: exponential moving average of params, or None when EMA is off.
    rng: uint32 [2] PRNG key data of the run (generated clips use fold_in(rng, step)).
  """
  step: jax.Array
  params: Any
  opt_state: Any
  ema_params: Any
  rng: jax.Array


# ------------------------------------------------------------------------------------------
# Model, optimizer and state.
# ------------------------------------------------------------------------------------------


def create_learning_rate_fn(train_config: ml_collections.ConfigDict) -> optax.Schedule:
  """Linear warmup from 0 to learning_rate (if warmup_steps > 0), then cosine decay to 0 or
  constant."""
  peak = train_config.learning_rate
  warmup_steps = int(train_config.warmup_steps)
  if train_config.decay == 'cosine':
    after = optax.cosine_decay_schedule(peak, max(train_config.num_steps - warmup_steps, 1))
  elif train_config.decay == 'constant':
    after = optax.constant_schedule(peak)
  else:
    raise ValueError(f"config.train.decay must be 'cosine' or 'constant', "
                     f'got {train_config.decay!r}.')
  if warmup_steps <= 0:
    return after
  warmup = optax.linear_schedule(0.0, peak, warmup_steps)
  return optax.join_schedules([warmup, after], [warmup_steps])


def create_optimizer(train_config: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """AdamW on the learning-rate schedule, after clipping the gradients' global norm."""
  return optax.chain(
      optax.clip_by_global_norm(train_config.grad_clip_norm),
      optax.adamw(create_learning_rate_fn(train_config),
                  weight_decay=train_config.weight_decay))


def model_inputs(batch: Batch) -> tuple[jax.Array, Optional[jax.Array], Optional[jax.Array]]:
  """(audio int32 [b, T], speaker int32 [b] or None, mel float32 [b, frames, n_mels] or None)."""
  return batch['audio'], batch.get('speaker'), batch.get('mel')


def init_batch(model: WaveNet) -> Batch:
  """A one-row batch of zeros with every input `model` takes (for parameter shapes)."""
  batch = {'audio': jnp.zeros((1, model.hop_length), jnp.int32)}
  if model.num_speakers:
    batch['speaker'] = jnp.zeros((1,), jnp.int32)
  if model.local_cond_channels:
    batch['mel'] = jnp.zeros((1, 1, model.local_cond_channels), jnp.float32)
  return batch


def init_train_state(rng: jax.Array, model: WaveNet, optimizer: optax.GradientTransformation,
                     use_ema: bool) -> TrainState:
  """A fresh state whose parameters are boxed with their logical axis names."""
  params = model.init(rng, *model_inputs(init_batch(model)))['params']
  return TrainState(
      step=jnp.zeros((), jnp.int32),
      params=params,
      opt_state=optimizer.init(params),
      ema_params=params if use_ema else None,
      rng=jax.random.key_data(rng))


def create_train_state(rng: jax.Array, model: WaveNet, optimizer: optax.GradientTransformation,
                       use_ema: bool, mesh: jax.sharding.Mesh,
                       rules: sharding.Rules) -> tuple[TrainState, TrainState]:
  """A fresh state, born sharded over `mesh`, and its tree of shardings.

  Args:
    rng: a PRNG key (jax.random.key); parameters are initialised from it.
  """
  def init(key):
    return nn.unbox(init_train_state(key, model, optimizer, use_ema))

  boxed = jax.eval_shape(lambda key: init_train_state(key, model, optimizer, use_ema), rng)
  state_shardings = sharding.logical_shardings(boxed, mesh, rules)
  state = jax.jit(init, out_shardings=state_shardings)(rng)
  return state, state_shardings


# ------------------------------------------------------------------------------------------
# Steps.
# ------------------------------------------------------------------------------------------


def cross_entropy_sums(model: WaveNet, logits: jax.Array, batch: Batch
                       ) -> tuple[distributions.NextSampleNats, jax.Array]:
  """Next-sample negative log-likelihoods summed over masked positions, and their number.

  Args:
    model: the WaveNet (its output head).
    logits: float32 [b, T, output_size], logits[:, t] the distribution of audio[:, t + 1].
    batch: with 'audio' int32 [b, T] and 'mask' float32 [b, T].

  Returns:
    (Σ mask * nats of the model's classes and of their μ-law classes, Σ mask), float32.
  """
  weights = batch['mask'][:, 1:]
  return (distributions.next_sample_nats(model.distribution, logits, batch['audio'], weights),
          jnp.sum(weights))


def train_step(state: TrainState, batch: Batch, *, model: WaveNet,
               optimizer: optax.GradientTransformation, learning_rate_fn: optax.Schedule,
               ema_decay: float) -> tuple[TrainState, Metrics]:
  """One optimizer update on a global batch.

  Returns:
    (new state, metrics): float32 scalars 'loss' (nats / masked sample), 'grad_norm',
    'learning_rate' (of this update), 'params_finite' (1.0 if all new params are finite).
  """
  def loss_fn(params):
    logits = model.apply({'params': params}, *model_inputs(batch))
    sums, count = cross_entropy_sums(model, logits, batch)
    return sums.nats / jnp.maximum(count, 1.0)

  loss, grads = jax.value_and_grad(loss_fn)(state.params)
  updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  ema_params = state.ema_params
  if ema_params is not None:
    ema_params = optax.incremental_update(params, ema_params, 1.0 - ema_decay)
  params_finite = jnp.all(jnp.stack(
      [jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(params)]))
  metrics = {
      'loss': loss,
      'grad_norm': optax.tree.norm(grads),
      'learning_rate': learning_rate_fn(state.step),
      'params_finite': params_finite.astype(jnp.float32),
  }
  new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                            ema_params=ema_params)
  return new_state, metrics


def make_train_step(model: WaveNet, optimizer: optax.GradientTransformation,
                    learning_rate_fn: optax.Schedule, ema_decay: float,
                    state_shardings: Optional[TrainState] = None,
                    batch_sharding: Optional[jax.sharding.Sharding] = None
                    ) -> Callable[[TrainState, Batch], tuple[TrainState, Metrics]]:
  """`train_step` jitted with the state donated (and placed by the shardings, if given).

  Args:
    state_shardings: the state's tree of shardings (from `create_train_state`); with
      batch_sharding, the step's inputs and new state keep these placements.
  """
  shardings = {}
  if state_shardings is not None:
    shardings = dict(in_shardings=(state_shardings, batch_sharding),
                     out_shardings=(state_shardings, None))
  return jax.jit(functools.partial(train_step, model=model, optimizer=optimizer,
                                   learning_rate_fn=learning_rate_fn, ema_decay=ema_decay),
                 donate_argnums=0, **shardings)


def eval_step(params: Any, batch: Batch, *, model: WaveNet) -> Metrics:
  """Float32 scalars of the teacher-forced loss on a global batch.

  Returns:
    {'nats_sum': Σ nats of the model's classes, 'mulaw_nats_sum': Σ nats of their μ-law
     classes (the same for the softmax head), 'count': scored positions}.
  """
  logits = model.apply({'params': params}, *model_inputs(batch))
  sums, count = cross_entropy_sums(model, logits, batch)
  return {'nats_sum': sums.nats, 'mulaw_nats_sum': sums.mulaw_nats, 'count': count}


# ------------------------------------------------------------------------------------------
# Host-side helpers.
# ------------------------------------------------------------------------------------------


class _StopSignals:
  """Records SIGTERM and a first Ctrl-C (SIGINT) of a single-process run: save, then stop.

  A second Ctrl-C exits at once (status 130), without saving. Multi-process runs use orbax's
  preemption sync for SIGTERM instead.
  """

  def __init__(self):
    self._event = threading.Event()
    self._previous = {signum: signal.signal(signum, self._handle) or signal.SIG_DFL
                      for signum in (signal.SIGTERM, signal.SIGINT)}

  def _handle(self, signum, frame):
    del frame
    if signum == signal.SIGINT and self._event.is_set():
      print('Interrupted again: exiting without saving.', file=sys.stderr, flush=True)
      os._exit(130)  # pylint: disable=protected-access  # At once: no cleanup to wait for.
    logging.warning('%s received: saving a checkpoint after this step, then exiting%s.',
                    signal.Signals(signum).name,
                    ' (Ctrl-C again: exit at once)' if signum == signal.SIGINT else '')
    self._event.set()

  def is_set(self) -> bool:
    return self._event.is_set()

  def restore(self) -> None:
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)


def check_config(config: ml_collections.ConfigDict, num_batch_shards: int) -> None:
  """Raises ValueError, naming the config key, for a setting the trainer cannot run.

  Called by `train_and_evaluate` before the workdir is touched.

  Args:
    config: the experiment config.
    num_batch_shards: devices the global batch is split over (`sharding.num_batch_shards`).
  """
  for key, value in (('train.batch_size', config.train.batch_size),
                     ('train.num_steps', config.train.num_steps),
                     ('eval.num_batches', config.eval.num_batches),
                     ('data.segment_length', config.data.segment_length),
                     ('data.read_threads', config.data.read_threads)):
    if value < 1:
      raise ValueError(f'config.{key} must be >= 1, got {value}.')
  batch_size = config.train.batch_size
  if batch_size % jax.process_count() or batch_size % num_batch_shards:
    raise ValueError(
        f'config.train.batch_size={batch_size} must be divisible by the number of processes '
        f'({jax.process_count()}) and of batch shards ({num_batch_shards}).')
  if config.model.dtype not in ('float32', 'bfloat16'):
    raise ValueError(f"config.model.dtype must be 'float32' or 'bfloat16', "
                     f'got {config.model.dtype!r}.')
  if config.model.embedding_init not in EMBEDDING_INITS:
    raise ValueError(f'config.model.embedding_init must be one of {sorted(EMBEDDING_INITS)}, '
                     f'got {config.model.embedding_init!r}.')
  try:
    distributions.make(config.model.output, None, config.model.num_mixtures,
                       config.model.log_scale_min)
  except ValueError as error:
    raise ValueError(f'config.model.{error}') from None
  if not 0.0 <= config.data.preemphasis < 1.0:
    raise ValueError(f'config.data.preemphasis must be in [0, 1) (0: off), '
                     f'got {config.data.preemphasis}.')
  if not 0.0 <= config.data.speed_perturbation < 1.0:
    raise ValueError('config.data.speed_perturbation must be in [0, 1), '
                     f'got {config.data.speed_perturbation}.')
  if config.data.speed_perturbation and config.model.local_conditioning:
    raise ValueError('config.data.speed_perturbation must be 0 with '
                     'config.model.local_conditioning (the mel frames would not match).')
  if config.train.max_seconds < 0:
    raise ValueError(f'config.train.max_seconds must be >= 0 (0: no limit), '
                     f'got {config.train.max_seconds}.')
  if not 0.0 <= config.train.ema_decay < 1.0:
    raise ValueError(f'config.train.ema_decay must be in [0, 1), got {config.train.ema_decay}.')
  for key, value in (('train.log_every_steps', config.train.log_every_steps),
                     ('checkpoint.every_steps', config.checkpoint.every_steps)):
    if value < 1:
      raise ValueError(f'config.{key} must be >= 1, got {value}.')
  for key, value in (('eval.every_steps', config.eval.every_steps),
                     ('sample.every_steps', config.sample.every_steps)):
    if value < 0:
      raise ValueError(f'config.{key} must be >= 0 (0 disables it), got {value}.')


def _out_of_time(step: int, loop_start: float, train_config: ml_collections.ConfigDict) -> bool:
  """Whether config.train.max_seconds (> 0) of the training loop are spent at this step.

  With several processes, process 0's clock decides, at the logging steps only, so that every
  process stops after the same step.
  """
  if train_config.max_seconds <= 0:
    return False
  if jax.process_count() == 1:
    return time.perf_counter() - loop_start >= train_config.max_seconds
  if step % train_config.log_every_steps:
    return False
  spent = time.perf_counter() - loop_start >= train_config.max_seconds
  return bool(multihost_utils.broadcast_one_to_all(np.bool_(spent)))


# Config keys whose change makes a checkpoint another model or trained on other features: a
# run resumed with a change here would silently continue something else.
_ARCHITECTURE_KEYS = ('model.', 'data.name', 'data.wav_dir', 'data.sample_rate', 'data.mel.',
                      'data.preemphasis')


def _flat(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """'section.key' -> value as JSON keeps it (tuples as lists), as checkpoints save configs."""

  def flatten(tree: dict[str, Any], prefix: str) -> dict[str, Any]:
    flat = {}
    for key, value in tree.items():
      if isinstance(value, dict):
        flat.update(flatten(value, f'{prefix}{key}.'))
      else:
        flat[f'{prefix}{key}'] = value
    return flat

  return flatten(json.loads(config.to_json_best_effort()), '')


def check_resumable(saved: ml_collections.ConfigDict, requested: ml_collections.ConfigDict,
                    workdir: str, accept_config_change: bool = False) -> list[str]:
  """Compares a workdir's saved config with the requested one before resuming.

  Returns:
    'config.KEY: saved -> requested' for each key that changed (safe to resume with, or
    accepted).

  Raises:
    ValueError: in one line naming the keys, when the model or the data features changed
      (unless accept_config_change).
  """
  saved_flat, requested_flat = _flat(saved), _flat(requested)
  changes, unsafe = [], []
  for key in sorted(saved_flat.keys() | requested_flat.keys()):
    before, after = saved_flat.get(key, '(absent)'), requested_flat.get(key, '(absent)')
    if before != after:
      changes.append(f'config.{key}: {before!r} -> {after!r}')
      if key.startswith(_ARCHITECTURE_KEYS):
        unsafe.append(changes[-1])
  if unsafe and not accept_config_change:
    raise ValueError(
        f'{workdir} holds a run of another model or data: {"; ".join(unsafe)}. Use a new '
        '--workdir, or pass --accept_config_change to resume this checkpoint anyway.')
  return changes


def _is_due(step: int, every_steps: int) -> bool:
  """Whether a periodic action with interval every_steps (0 = never) runs at step."""
  return every_steps > 0 and step % every_steps == 0


def _prepare_dataset(data_config: ml_collections.ConfigDict) -> DatasetInfo:
  """Prepares the dataset on process 0 first, then loads it on the others."""
  if jax.process_index() == 0:
    info = input_pipeline.prepare_dataset(data_config)
  multihost_utils.sync_global_devices('prepare_dataset')
  if jax.process_index() != 0:
    info = input_pipeline.prepare_dataset(data_config)
  return info


def _global_batches(local_batches: Iterator[dict[str, np.ndarray]],
                    batch_sharding: jax.sharding.NamedSharding,
                    global_batch_size: int) -> Iterator[Batch]:
  for local_batch in local_batches:
    yield sharding.global_batch(local_batch, batch_sharding, global_batch_size)


def _to_host(metrics: Metrics) -> dict[str, float]:
  return {name: float(value) for name, value in jax.device_get(metrics).items()}


def _check_finite(step: int, metrics: dict[str, float], workdir: str) -> None:
  if not (math.isfinite(metrics['loss']) and math.isfinite(metrics['grad_norm'])
          and metrics['params_finite'] == 1.0):
    raise TrainingDivergedError(
        f'training diverged at step {step}: loss={metrics["loss"]}, '
        f'grad_norm={metrics["grad_norm"]}; stopped without saving. The last good checkpoint '
        f'is in {checkpointing.checkpoint_dir(workdir)} (lower config.train.learning_rate or '
        'config.train.grad_clip_norm).')


def _eval_params(state: TrainState) -> Any:
  """The parameters that evaluation, clips and inference use: the EMA when the run keeps one."""
  return state.ema_params if state.ema_params is not None else state.params


def _evaluate(jit_eval_step: Callable[[Any, Batch], Metrics], params: Any,
              batches: Iterator[Batch]) -> tuple[float, float]:
  """Validation (bits/sample, bits per μ-law class) over `batches` (all processes take part)."""
  totals = {'nats_sum': 0.0, 'mulaw_nats_sum': 0.0, 'count': 0.0}
  for batch in batches:
    for name, value in _to_host(jit_eval_step(params, batch)).items():
      totals[name] += value
  count = max(totals['count'], 1.0)
  return (evaluation.nats_to_bits(totals['nats_sum'] / count),
          evaluation.nats_to_bits(totals['mulaw_nats_sum'] / count))


def _clip_conditioning(config: ml_collections.ConfigDict, info: DatasetInfo,
                       data_kwargs: dict[str, Any]) -> dict[str, np.ndarray]:
  """{'speaker': int32 [1], 'mel': float32 [1, frames, n_mels]} (those the model takes).

  The periodic clips are conditioned on the first crop of the validation split (of the
  training split when there is none), read on this process alone.
  """
  read = dict(data_kwargs, process_index=0, process_count=1)
  batches = (input_pipeline.eval_batches(config.data, info, num_batches=1, **read)
             if info.num_validation_examples else
             input_pipeline.train_batches(config.data, info, seed=config.seed, **read))
  return {key: value[:1] for key, value in next(batches).items() if key in ('speaker', 'mel')}


def _generate_clip(model: WaveNet, params: Any, rng: jax.Array, num_samples: int,
                   conditioning: dict[str, np.ndarray], preemphasis: float) -> np.ndarray:
  """A float32 [num_samples] waveform sampled from the model on this process alone.

  Args:
    preemphasis: config.data.preemphasis (the clip is de-emphasised).
    conditioning: from `_clip_conditioning`; a mel-conditioned clip lasts at most as long
      as its mel.
  """
  local_cond = conditioning.get('mel')
  if local_cond is not None:
    num_samples = min(num_samples, local_cond.shape[1] * model.hop_length)
  # The waveform starts with the sampler's silent start sample.
  return synthesis.synthesize(model, {'params': params}, rng, num_samples=num_samples - 1,
                              global_cond=conditioning.get('speaker'),
                              local_cond=local_cond, preemphasis=preemphasis)[0]


def _write_clip(workdir: str, writer: summaries.SummaryWriter, model: WaveNet,
                state: TrainState, step: int, seconds: float, info: DatasetInfo,
                conditioning: Optional[dict[str, np.ndarray]], preemphasis: float) -> None:
  """Samples a clip at `step` and writes it to workdir/samples and TensorBoard (the chief).

  Every process takes part in gathering the parameters; process 0 alone generates.
  """
  params, rng_data = multihost_utils.process_allgather((_eval_params(state), state.rng),
                                                       tiled=True)
  if jax.process_index() != 0:
    return
  rng = jax.random.fold_in(jax.random.wrap_key_data(rng_data), step)
  clip = _generate_clip(model, params, rng, int(seconds * info.sample_rate), conditioning,
                        preemphasis)
  path = epath.Path(workdir) / 'samples' / f'step_{step:08d}.wav'
  audio_lib.write_wav(path, clip, info.sample_rate)
  writer.audio('generated', clip, step, sample_rate=info.sample_rate)
  logging.info('step %d  wrote %.2f s generated clip %s', step, clip.size / info.sample_rate,
               path)


class _TrainMetrics:
  """Checks every step's metrics, averages them between log lines, logs and writes them."""

  def __init__(self, writer: summaries.SummaryWriter, train_config: ml_collections.ConfigDict,
               workdir: str, start_step: int, samples_per_step: int):
    self._writer = writer
    self._log_every_steps = train_config.log_every_steps
    self._num_steps = train_config.num_steps
    self._workdir = workdir
    self._samples_per_step = samples_per_step
    self._window: list[dict[str, float]] = []
    self._window_start, self._window_step = time.perf_counter(), start_step

  def record(self, step: int, device_metrics: Metrics, last: bool = False) -> None:
    """Fetches step's metrics (raising TrainingDivergedError on NaN/inf); logs when due."""
    metrics = _to_host(device_metrics)
    _check_finite(step, metrics, self._workdir)
    self._window.append(metrics)
    if step % self._log_every_steps and not last:
      return
    elapsed = time.perf_counter() - self._window_start
    steps_per_s = (step - self._window_step) / max(elapsed, 1e-9)
    summary = {name: float(np.mean([m[name] for m in self._window]))
               for name in ('loss', 'grad_norm', 'learning_rate')}
    summary['bits_per_sample'] = evaluation.nats_to_bits(summary['loss'])
    summary['steps_per_s'] = steps_per_s
    summary['samples_per_s'] = steps_per_s * self._samples_per_step
    self._window.clear()
    self._window_start, self._window_step = time.perf_counter(), step
    for name, value in summary.items():
      self._writer.scalar(f'train/{name}', value, step)
    if jax.process_index() == 0:
      eta_s = (self._num_steps - step) / max(steps_per_s, 1e-9)
      logging.info('step %d/%d  loss %.4f nats  %.4f bits/sample  %.0f samples/s  '
                   '%.2f steps/s  ETA %s', step, self._num_steps, summary['loss'],
                   summary['bits_per_sample'], summary['samples_per_s'], steps_per_s,
                   time.strftime('%H:%M:%S', time.gmtime(eta_s)))


def _compile(jit_train_step: Any, state: TrainState, batch: Batch) -> Callable:
  """The train step compiled for these shapes, with its memory use logged (process 0)."""
  began = time.perf_counter()
  compiled = jit_train_step.lower(state, batch).compile()
  memory = compiled.memory_analysis()
  if jax.process_index() == 0:
    megabytes = lambda size: size / 2**20
    if memory is None:
      logging.info('Train step compiled in %.1f s.', time.perf_counter() - began)
    else:
      logging.info('Train step compiled in %.1f s; per device: arguments %.1f MB (%.1f MB '
                   'donated to the outputs), outputs %.1f MB, temporaries %.1f MB, code %.1f MB.',
                   time.perf_counter() - began, megabytes(memory.argument_size_in_bytes),
                   megabytes(memory.alias_size_in_bytes), megabytes(memory.output_size_in_bytes),
                   megabytes(memory.temp_size_in_bytes),
                   megabytes(memory.generated_code_size_in_bytes))
  return compiled


# ------------------------------------------------------------------------------------------
# The run.
# ------------------------------------------------------------------------------------------


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *,
                       accept_config_change: bool = False) -> TrainState:
  """Trains (or resumes training) and evaluates; checkpoints and summaries go to workdir.

  Args:
    config: the experiment config.
    workdir: the run's directory; a run resumes from its latest checkpoint.
    accept_config_change: resume even if the model or data config differs from the one saved
      with the checkpoint (`check_resumable`).

  Returns:
    the final state (sharded over all devices).

  Raises:
    TrainingPreempted: after saving a checkpoint on SIGTERM, Ctrl-C (single process) or
      orbax's preemption signal (multi-host).
    TrainingDivergedError: if the loss or the parameters become NaN/inf.
    workdir_lock.WorkdirBusyError: if another run holds the workdir.
    ValueError: for an inconsistent config.
  """
  mesh = sharding.create_mesh(config.mesh)
  rules = sharding.rules_from_config(config)
  check_config(config, sharding.num_batch_shards(mesh, rules))
  created = not epath.Path(workdir).exists()
  lock = _hold_workdir(workdir)
  try:
    return _train_and_evaluate(config, workdir, mesh, rules, accept_config_change)
  except BaseException:
    if created:
      _remove_if_nothing_written(workdir)
    raise
  finally:
    workdir_lock.release(lock)


def _remove_if_nothing_written(workdir: str) -> None:
  """Removes a workdir this run created when it failed before writing anything there.

  Only the lock and an empty checkpoints folder count as nothing: summaries, clips or a
  checkpoint (a run that diverged at step 3, say) are kept.
  """
  path = epath.Path(workdir)
  if jax.process_index() != 0 or not path.exists():
    return
  checkpoints = checkpointing.checkpoint_dir(workdir)
  if ({entry.name for entry in path.iterdir()} <= {workdir_lock.LOCK_FILE, checkpoints.name}
      and not (checkpoints.exists() and any(checkpoints.iterdir()))):
    path.rmtree()


def _hold_workdir(workdir: str) -> Optional[Any]:
  """Creates the workdir and locks it on process 0; every process raises if it is busy."""
  lock, busy = None, ''
  path = epath.Path(workdir)
  if path.exists() and not path.is_dir():
    raise ValueError(f'--workdir={workdir} is a file, not a folder.')
  if jax.process_index() == 0:
    path.mkdir(parents=True, exist_ok=True)
    try:
      lock = workdir_lock.hold(workdir)
    except workdir_lock.WorkdirBusyError as error:
      busy = str(error)
  if jax.process_count() > 1:
    if bool(multihost_utils.broadcast_one_to_all(np.bool_(busy))) and not busy:
      busy = f'{workdir} is in use by another run (process 0 holds no lock on it).'
  if busy:
    raise workdir_lock.WorkdirBusyError(busy)
  return lock


def _train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                        mesh: jax.sharding.Mesh, rules: sharding.Rules,
                        accept_config_change: bool) -> TrainState:
  """train_and_evaluate once the config is checked and the workdir is held."""
  is_chief = jax.process_index() == 0
  global_batch_size = config.train.batch_size
  if is_chief:
    logging.info('Mesh %s over %d devices, %d processes; workdir %s.', dict(mesh.shape),
                 jax.device_count(), jax.process_count(), workdir)

  # Resume only what this config describes (checked before any long work).
  manager = checkpointing.create_checkpoint_manager(workdir, config.checkpoint)
  saved = checkpointing.saved_config(manager)
  if saved is not None:
    for change in check_resumable(saved, config, workdir, accept_config_change):
      if is_chief:
        logging.warning('Resuming with %s.', change)

  # Data.
  info = _prepare_dataset(config.data)
  model = model_from_config(config.model, config.data, info.speakers)
  batch_sharding = sharding.batch_sharding(mesh, rules)
  data_kwargs = dict(receptive_field=model.receptive_field,
                     global_batch_size=global_batch_size,
                     with_speaker=bool(model.num_speakers),
                     with_mel=bool(model.local_cond_channels),
                     codec=model.codec)
  has_validation = info.num_validation_examples > 0
  if is_chief and not has_validation:
    logging.warning('The dataset has no validation split: no periodic evaluation.')

  def validation_batches() -> Iterator[Batch]:
    return _global_batches(
        input_pipeline.eval_batches(config.data, info, num_batches=config.eval.num_batches,
                                    **data_kwargs),
        batch_sharding, global_batch_size)

  # Model, optimizer and state.
  learning_rate_fn = create_learning_rate_fn(config.train)
  optimizer = create_optimizer(config.train)
  state, state_shardings = create_train_state(
      jax.random.key(config.seed), model, optimizer, config.train.ema_decay > 0.0, mesh, rules)

  # Restore.
  abstract_state = jax.tree.map(
      lambda array, array_sharding: jax.ShapeDtypeStruct(array.shape, array.dtype,
                                                         sharding=array_sharding),
      state, state_shardings)
  restored = checkpointing.restore_state(manager, abstract_state, workdir)
  if restored is not None:
    state = restored
  start_step = int(jax.device_get(state.step))
  num_steps = config.train.num_steps
  if is_chief:
    num_params = sum(leaf.size for leaf in jax.tree.leaves(state.params))
    logging.info('%s from step %d: %d parameters, receptive field %d samples.',
                 'Resuming' if restored is not None else 'Starting', start_step, num_params,
                 model.receptive_field)

  # Steps, compiled before the loop.
  jit_train_step = make_train_step(model, optimizer, learning_rate_fn, config.train.ema_decay,
                                   state_shardings, batch_sharding)
  jit_eval_step = jax.jit(functools.partial(eval_step, model=model),
                          in_shardings=(state_shardings.params, batch_sharding))
  train_batches = _global_batches(
      input_pipeline.train_batches(config.data, info, seed=config.seed, start_step=start_step,
                                   **data_kwargs),
      batch_sharding, global_batch_size)
  if start_step < num_steps:
    first_batch = next(train_batches)
    compiled_train_step = _compile(jit_train_step, state, first_batch)
    train_batches = itertools.chain([first_batch], train_batches)
  clip_conditioning = (_clip_conditioning(config, info, data_kwargs)
                       if is_chief and config.sample.every_steps > 0 else None)

  writer = summaries.SummaryWriter(workdir if is_chief else None)
  metrics = _TrainMetrics(writer, config.train, workdir, start_step,
                          global_batch_size * (model.receptive_field + config.data.segment_length))
  stop_signals = _StopSignals() if jax.process_count() == 1 else None

  # The loop. Step s's metrics are checked for NaN/inf while step s + 1 runs, except before
  # a checkpoint: then the state to save is checked first.
  pending: Optional[tuple[int, Metrics]] = None
  loop_start = time.perf_counter()
  try:
    for step in range(start_step + 1, num_steps + 1):
      state, step_metrics = compiled_train_step(state, next(train_batches))
      if pending is not None:
        metrics.record(*pending)
      pending = (step, step_metrics)
      last = step == num_steps or _out_of_time(step, loop_start, config.train)
      preempted = (manager.reached_preemption(step)
                   or (stop_signals is not None and stop_signals.is_set()))
      if preempted or manager.should_save(step) or last:
        metrics.record(*pending, last=last)
        pending = None
        checkpointing.save(manager, step, state, config, info, force=True)
      if preempted:
        checkpointing.finish(manager)
        if is_chief:
          logging.warning('Preempted: saved checkpoint %d in %s; exiting.', step,
                          checkpointing.checkpoint_dir(workdir))
        raise TrainingPreempted(step, str(checkpointing.checkpoint_dir(workdir)))
      eval_every_steps = config.eval.every_steps
      if has_validation and (_is_due(step, eval_every_steps) or (eval_every_steps > 0 and last)):
        eval_bits, mulaw_bits = _evaluate(jit_eval_step, _eval_params(state),
                                          validation_batches())
        writer.scalar('eval/bits_per_sample', eval_bits, step)
        writer.scalar('eval/mulaw_bits_per_sample', mulaw_bits, step)
        if is_chief:
          logging.info('step %d  validation %.4f bits/sample (%.4f bits per μ-law class)', step,
                       eval_bits, mulaw_bits)
      if _is_due(step, config.sample.every_steps):
        _write_clip(workdir, writer, model, state, step, config.sample.seconds, info,
                    clip_conditioning, config.data.preemphasis)
      if last:
        if step < num_steps and is_chief:
          logging.info('config.train.max_seconds=%s spent: stopped at step %d of %d.',
                       config.train.max_seconds, step, num_steps)
        break
    if pending is not None:
      metrics.record(*pending)
    checkpointing.finish(manager)
  finally:
    checkpointing.close_quietly(manager)
    if stop_signals is not None:
      stop_signals.restore()
    writer.close()
  return state
