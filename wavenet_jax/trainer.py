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
import dataclasses
import functools
import itertools
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

from wavenet_jax import checkpointing
from wavenet_jax import clips
from wavenet_jax import config_rules
from wavenet_jax import distributions
from wavenet_jax import input_pipeline
from wavenet_jax import optimizers
from wavenet_jax import run_control
from wavenet_jax import sharding
from wavenet_jax import storage
from wavenet_jax import summaries
from wavenet_jax import train_metrics
from wavenet_jax.models import WaveNet, model_from_config

Batch = dict[str, jax.Array]
Metrics = dict[str, jax.Array]


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


def _abstract_params(model: WaveNet) -> Any:
  """The model's parameter tree of jax.ShapeDtypeStruct (nothing computed)."""
  return nn.unbox(jax.eval_shape(
      lambda key: init_train_state(key, model, optax.identity(), False),
      jax.random.key(0)).params)


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


def _is_due(step: int, every_steps: int, last: bool = False) -> bool:
  """Whether a periodic action with interval every_steps (0 = never) runs at step.

  Args:
    last: the run's last step, where an action that is on runs whatever the interval.
  """
  return every_steps > 0 and (step % every_steps == 0 or last)


def _global_batches(local_batches: Iterator[dict[str, np.ndarray]],
                    batch_sharding: jax.sharding.NamedSharding,
                    global_batch_size: int) -> Iterator[Batch]:
  for local_batch in local_batches:
    yield sharding.global_batch(local_batch, batch_sharding, global_batch_size)


def _eval_params(state: TrainState) -> Any:
  """The parameters that evaluation, clips and inference use: the EMA when the run keeps one."""
  return state.ema_params if state.ema_params is not None else state.params


def _compile(jit_train_step: Any, state: TrainState, batch: Batch) -> Callable:
  """The train step compiled for these shapes, with its memory use logged (process 0)."""
  began = time.perf_counter()
  compiled = jit_train_step.lower(state, batch).compile()
  train_metrics.log_compiled('Train step', compiled, time.perf_counter() - began)
  return compiled


@dataclasses.dataclass(frozen=True)
class _StartingPoint:
  """Where a run starts: its workdir's latest checkpoint, another run's parameters, or step 0.

  Attributes:
    manager: the run's checkpoints.
    workdir: the run's directory.
    saved_info: the dataset info of the run's own latest checkpoint (a resume), else None.
    init: the checkpoint of config.train.init_from when the run has none of its own, else None.
  """
  manager: Any
  workdir: str
  saved_info: Optional[Any]
  init: Optional[checkpointing.InitSource]

  @classmethod
  def checked(cls, config: ml_collections.ConfigDict, workdir: str, manager: Any,
              accept_config_change: bool) -> '_StartingPoint':
    """Reads what the run starts from; a config it cannot continue is a one-line ValueError."""
    is_chief = jax.process_index() == 0
    saved = checkpointing.saved_config(manager)
    if saved is None:
      init = None
      if config.train.init_from:
        init = checkpointing.init_source(config.train.init_from)
        init.check_fits(_abstract_params(model_from_config(
            config.model, config.data, init.dataset_info.speakers)), config.data)
      return cls(manager, workdir, None, init)
    for change in config_rules.check_resumable(saved, config, workdir, accept_config_change):
      if is_chief:
        logging.warning('Resuming with %s.', change)
    if config.train.init_from and is_chief:
      logging.warning('config.train.init_from=%r ignored: %s holds checkpoints; resuming.',
                      config.train.init_from, workdir)
    return cls(manager, workdir, checkpointing.saved_dataset_info(manager), None)

  def dataset_for_run(self, dataset: input_pipeline.PreparedDataset,
                      config: ml_collections.ConfigDict) -> input_pipeline.PreparedDataset:
    """dataset with the checkpoint's speaker rows (and init_from's feature statistics)."""
    notices = []
    if self.saved_info is not None:
      dataset, notices = dataset.resumed_from(
          self.saved_info, speaker_conditioned=config.model.global_conditioning,
          grow_speakers=config.train.grow_speakers)
    elif self.init is not None:
      # Its speakers keep their rows, new ones get rows; its data is not this run's earlier data.
      dataset, notices = dataset.resumed_from(
          dataclasses.replace(self.init.dataset_info, prepared_as=None),
          speaker_conditioned=config.model.global_conditioning, grow_speakers=True)
      dataset = dataclasses.replace(
          dataset, info=self.init.with_its_normalisation(dataset.info, config.data))
    if jax.process_index() == 0:
      for notice in notices:
        logging.warning(notice)
    return dataset

  def state(self, fresh: TrainState, shardings: TrainState, model: WaveNet,
            config: ml_collections.ConfigDict, optimizer: optax.GradientTransformation,
            mesh: jax.sharding.Mesh, rules: sharding.Rules) -> TrainState:
    """The run's checkpoint restored, or else init_from's parameters, or else fresh.

    Args:
      fresh: the state at step 0 of `model` (the run's), placed with `shardings`.

    A checkpoint of fewer speakers than the model is restored into a state of its own
    speakers, then its speaker table grown to the model's.
    """
    checkpoint_info = self.saved_info if self.init is None else self.init.dataset_info
    saved_state, saved_shardings = fresh, shardings
    if checkpoint_info is not None and model.num_speakers > len(checkpoint_info.speakers):
      saved_state, saved_shardings = create_train_state(
          jax.random.key(config.seed), model_from_config(config.model, config.data,
                                                         checkpoint_info.speakers),
          optimizer, config.train.ema_decay > 0.0, mesh, rules)
    abstract_state = jax.tree.map(
        lambda leaf, where: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=where),
        saved_state, saved_shardings)
    restored = checkpointing.restore_state(self.manager, abstract_state, self.workdir)
    if restored is None and self.init is not None:
      restored = self.init.warm_started(
          saved_state, abstract_state,
          jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec()))
      if jax.process_index() == 0:
        logging.info('Parameters%s from checkpoint %d of %s (config.train.init_from); a fresh '
                     'optimizer.', ' and EMA' if restored.ema_params is not None else '',
                     self.init.step, self.init.workdir)
    if restored is not None and saved_state is not fresh:
      restored = checkpointing.grow_speaker_rows(restored, fresh)
    return fresh if restored is None else restored


# ------------------------------------------------------------------------------------------
# The run.
# ------------------------------------------------------------------------------------------


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *,
                       accept_config_change: bool = False) -> TrainState:
  """Trains (or resumes training) and evaluates; checkpoints and summaries go to workdir.

  Args:
    config: the experiment config; a key set where it used to be is moved to its new place
      (`config_rules.move_config_keys`), with a notice.
    workdir: the run's directory; a run resumes from its latest checkpoint.
    accept_config_change: resume even if the model or data config differs from the one saved
      with the checkpoint (`config_rules.check_resumable`).

  Returns:
    the final state (sharded over all devices).

  Raises:
    run_control.TrainingPreempted: after saving a checkpoint on SIGTERM, Ctrl-C (single
      process) or orbax's preemption signal (multi-host).
    run_control.TrainingDivergedError: if the loss or the parameters become NaN/inf.
    run_control.ProcessesLost: if another process of a multi-process run died during training.
    workdir_lock.WorkdirBusyError: if another run holds the workdir.
    ValueError: for an inconsistent config.
  """
  for notice in config_rules.move_config_keys(config):
    if jax.process_index() == 0:
      logging.warning(notice)
  mesh = sharding.create_mesh(config.mesh)
  rules = sharding.rules_from_config(config)
  config_rules.check_config(config, sharding.num_batch_shards(mesh, rules))
  storage.check_remote_support(workdir, '--workdir')
  storage.check_local(config.data.data_dir, 'config.data.data_dir')
  budget = run_control.TimeBudget(config.train)
  with run_control.held_workdir(workdir):
    return _train_and_evaluate(config, workdir, mesh, rules, budget, accept_config_change)


def _train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                        mesh: jax.sharding.Mesh, rules: sharding.Rules,
                        budget: run_control.TimeBudget,
                        accept_config_change: bool) -> TrainState:
  """train_and_evaluate once the config is checked and the workdir is held.

  The checkpoint manager is closed however the run ends: its background work (a save, the
  cleanup of an interrupted one) must not outlive a workdir removed after an early error.
  """
  manager = checkpointing.create_checkpoint_manager(workdir, config.checkpoint)
  lost: Optional[run_control.ProcessesLost] = None
  try:
    return _run(config, workdir, manager, mesh, rules, budget, accept_config_change)
  except Exception as error:  # pylint: disable=broad-except  # A lost process: any kind.
    lost = run_control.lost_processes(error)
    if lost is None:
      raise
    raise lost from error
  finally:
    if lost is None:  # An unfinished save would wait for the lost process (minutes).
      checkpointing.close_quietly(manager)


def _run(config: ml_collections.ConfigDict, workdir: str, manager: Any,
         mesh: jax.sharding.Mesh, rules: sharding.Rules, budget: run_control.TimeBudget,
         accept_config_change: bool) -> TrainState:
  """The run itself: resume or start, the loop, the last save."""
  is_chief = jax.process_index() == 0
  global_batch_size = config.train.batch_size
  if is_chief:
    logging.info('Mesh %s over %d devices, %d processes; workdir %s.', dict(mesh.shape),
                 jax.device_count(), jax.process_count(), workdir)

  # Resume only what this config describes (checked before any long work).
  start = _StartingPoint.checked(config, workdir, manager, accept_config_change)
  # Data: prepared once, its speakers on the checkpoint's rows.
  dataset = start.dataset_for_run(input_pipeline.prepare_dataset(config.data), config)
  info = dataset.info
  model = model_from_config(config.model, config.data, info.speakers)
  batch_sharding = sharding.batch_sharding(mesh, rules)
  crops = dict(receptive_field=model.receptive_field, with_speaker=bool(model.num_speakers),
               with_mel=bool(model.local_cond_channels), codec=model.codec)
  validation_batches = None
  if info.num_validation_examples:
    validation_batches = dataset.eval_batches(
        global_batch_size=global_batch_size, num_batches=config.eval.num_batches, **crops)
  elif is_chief:
    logging.warning('The dataset has no validation split: no periodic evaluation.')

  # Model, optimizer and state.
  learning_rate_fn = optimizers.create_learning_rate_fn(config.train)
  optimizer = optimizers.create_optimizer(config.train)
  state, state_shardings = create_train_state(
      jax.random.key(config.seed), model, optimizer, config.train.ema_decay > 0.0, mesh, rules)
  state = start.state(state, state_shardings, model, config, optimizer, mesh, rules)
  start_step = int(jax.device_get(state.step))
  num_steps = config.train.num_steps
  if is_chief:
    num_params = sum(leaf.size for leaf in jax.tree.leaves(state.params))
    logging.info('%s from step %d: %d parameters, receptive field %d samples.',
                 'Resuming' if start_step else 'Starting', start_step, num_params,
                 model.receptive_field)

  # Steps, compiled before the loop.
  jit_train_step = make_train_step(model, optimizer, learning_rate_fn, config.train.ema_decay,
                                   state_shardings, batch_sharding)
  jit_eval_step = jax.jit(functools.partial(eval_step, model=model),
                          in_shardings=(state_shardings.params, batch_sharding))
  train_batches = _global_batches(
      dataset.train_batches(global_batch_size=global_batch_size, seed=config.seed,
                            start_step=start_step, **crops),
      batch_sharding, global_batch_size)
  if start_step < num_steps:
    first_batch = next(train_batches)
    compiled_train_step = _compile(jit_train_step, state, first_batch)
    train_batches = itertools.chain([first_batch], train_batches)
  clip_conditioning = (clips.conditioning(dataset, config.seed, crops)
                       if is_chief and config.sample.every_steps > 0 else None)

  writer = summaries.SummaryWriter(workdir if is_chief else None)
  metrics = train_metrics.TrainMetrics(
      writer, config.train, workdir, start_step,
      global_batch_size * (model.receptive_field + config.data.segment_length))
  stop_signals = run_control.StopSignals()

  # The loop. Step s's metrics are checked for NaN/inf while step s + 1 runs, except before
  # a checkpoint: then the state to save is checked first.
  pending: Optional[tuple[int, Metrics]] = None
  try:
    for step in range(start_step + 1, num_steps + 1):
      state, step_metrics = compiled_train_step(state, next(train_batches))
      if pending is not None:
        metrics.record(*pending)
      pending = (step, step_metrics)
      last = step == num_steps or budget.spent(step)
      preempted = manager.reached_preemption(step) or stop_signals.is_set()
      if preempted or manager.should_save(step) or last:
        metrics.record(*pending, last=last)
        pending = None
        checkpointing.save(manager, step, state, config, info, force=True)
      if preempted:
        checkpointing.finish(manager)
        if is_chief:
          logging.warning('Preempted: saved checkpoint %d in %s; exiting.', step,
                          checkpointing.checkpoint_dir(workdir))
        raise run_control.TrainingPreempted(step, str(checkpointing.checkpoint_dir(workdir)))
      if validation_batches is not None and _is_due(step, config.eval.every_steps, last):
        train_metrics.evaluate(
            jit_eval_step, _eval_params(state),
            _global_batches(iter(validation_batches), batch_sharding, global_batch_size),
            writer, step)
      if _is_due(step, config.sample.every_steps):
        clips.write(workdir, writer, model, _eval_params(state), state.rng, step,
                    config.sample.seconds, info.sample_rate, clip_conditioning)
      if last:
        if step < num_steps and is_chief:
          logging.info('config.train.max_seconds=%s spent: stopped at step %d of %d.',
                       config.train.max_seconds, step, num_steps)
        break
    if pending is not None:
      metrics.record(*pending)
    checkpointing.finish(manager)
  finally:
    stop_signals.restore()
    writer.close()
  return state
