"""Checkpoints: orbax CheckpointManager in WORKDIR/checkpoints/<step>/.

Each checkpoint holds three items, written together (a step directory appears only when all
three are complete, so a run killed mid-save restarts from the previous step):
  state/         the TrainState (params, opt_state, ema_params, step, rng)
  config/        the experiment config as JSON
  dataset_info/  dataset_info.DatasetInfo as JSON (speakers, mel statistics)

`restore_for_inference` rebuilds the model from a workdir alone (for evaluate.py, sampling);
`init_source` reads another run's checkpoint that a new run starts from (config.train.init_from).
A checkpoint that does not restore (a truncated or missing file) is passed over: training moves
it to WORKDIR/damaged_checkpoints/, inference leaves it; a save the disk has no room for stops
the run with SaveError before it starts.
"""
import dataclasses
import functools
import json
import os
import shutil
import sys
from typing import Any, Optional

from absl import logging
from etils import epath
import jax
import jax.numpy as jnp
from jax.experimental import multihost_utils
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers

from wavenet_jax import config_rules
from wavenet_jax import storage
from wavenet_jax.dataset_info import DatasetInfo
from wavenet_jax import features as features_lib
from wavenet_jax.models import WaveNet, model_from_config

DAMAGED_DIR = 'damaged_checkpoints'
STATE = 'state'
CONFIG = 'config'
DATASET_INFO = 'dataset_info'


class SaveError(RuntimeError):
  """A checkpoint could not be written (e.g. a full disk); the earlier ones are intact."""


class NoCheckpointError(FileNotFoundError):
  """The workdir holds no (complete) checkpoint; the message names the directory."""


def checkpoint_dir(workdir: str | epath.PathLike) -> epath.Path:
  """WORKDIR/checkpoints, absolute; workdir is a local path or a URL such as gs://bucket/run."""
  storage.check_remote_support(workdir, '--workdir')
  path = epath.Path(workdir)
  return (path if path.is_absolute() else path.absolute()) / 'checkpoints'


def create_checkpoint_manager(workdir: str | epath.PathLike,
                              checkpoint_config: ml_collections.ConfigDict,
                              *, read_only: bool = False) -> ocp.CheckpointManager:
  """A manager that saves (asynchronously) every `every_steps` steps and at preemption.

  Args:
    workdir: the run's directory; checkpoints go to workdir/checkpoints/<step>/.
    checkpoint_config: config.checkpoint (every_steps, max_to_keep).
    read_only: open an existing directory without creating or deleting anything.
  """
  policy = checkpoint_managers.AnySavePolicy([
      checkpoint_managers.FixedIntervalPolicy(int(checkpoint_config.every_steps)),
      checkpoint_managers.PreemptionCheckpointingPolicy(),
  ])
  options = ocp.CheckpointManagerOptions(
      max_to_keep=int(checkpoint_config.max_to_keep),
      save_decision_policy=policy,
      enable_async_checkpointing=True,
      # Reclaims what an interrupted or failed save left (its space, on a full disk).
      cleanup_tmp_directories=not read_only,
      create=not read_only,
      read_only=read_only)
  return ocp.CheckpointManager(checkpoint_dir(workdir), options=options,
                               item_handlers=_item_handlers())


def _item_handlers() -> dict[str, ocp.CheckpointHandler]:
  """The handler of each item (so that restoring some items leaves the others unread)."""
  return {STATE: ocp.StandardCheckpointHandler(), CONFIG: ocp.JsonCheckpointHandler(),
          DATASET_INFO: ocp.JsonCheckpointHandler()}


def save(manager: ocp.CheckpointManager, step: int, state: Any,
         config: ml_collections.ConfigDict, dataset_info: DatasetInfo, *,
         force: bool = False) -> bool:
  """Starts an asynchronous save of `state` at `step` if the policy (or `force`) says so.

  Called on every process (orbax coordinates the hosts). Returns whether a save started.

  Raises:
    SaveError: if a local checkpoint directory has no room for the state, or this or the
      previous (asynchronous) save failed.
  """
  _check_room(manager, step, state)
  try:
    return _save(manager, step, state, config, dataset_info, force)
  except Exception as error:  # pylint: disable=broad-except  # orbax/TensorStore: many kinds.
    raise _save_error(manager, error) from None


def finish(manager: ocp.CheckpointManager) -> None:
  """Waits for the last asynchronous save; SaveError (one line) if it failed."""
  try:
    manager.wait_until_finished()
  except Exception as error:  # pylint: disable=broad-except  # orbax/TensorStore: many kinds.
    raise _save_error(manager, error) from None


def close_quietly(manager: ocp.CheckpointManager) -> None:
  """Waits for the last save and closes the manager, on the way out of a run.

  A save that fails here was reported by `finish` or is hidden behind the error that ends
  the run; one warning line says so instead of a second traceback.
  """
  try:
    manager.wait_until_finished()
    manager.close()
  except Exception as error:  # pylint: disable=broad-except  # orbax/TensorStore: many kinds.
    logging.warning('The last checkpoint save did not complete: %s', _error_line(error))


def _save_error(manager: ocp.CheckpointManager, error: BaseException) -> SaveError:
  return SaveError(f'could not save a checkpoint in {manager.directory} ({_error_line(error)}); '
                   'the checkpoints before it are intact.')


# Room asked for beyond the state's own bytes (the JSON items and orbax's metadata).
_SAVE_MARGIN_BYTES = 1 << 20


def _check_room(manager: ocp.CheckpointManager, step: int, state: Any) -> None:
  """Raises SaveError before a save that a local disk has no room for (gs:// is not checked)."""
  directory = os.fspath(manager.directory)
  if storage.is_remote(directory) or jax.process_index() != 0:
    return
  needed = sum(leaf.nbytes for leaf in jax.tree.leaves(state)) + _SAVE_MARGIN_BYTES
  free = shutil.disk_usage(directory).free
  if free < needed:
    raise SaveError(f'no room for checkpoint {step} in {directory}: it needs about '
                    f'{needed / 2**20:.1f} MB, {free / 2**20:.1f} MB are free; the checkpoints '
                    'before it are intact. Free some space (or move the workdir) and start '
                    'the same command again to resume.')


def _save(manager: ocp.CheckpointManager, step: int, state: Any,
          config: ml_collections.ConfigDict, dataset_info: DatasetInfo, force: bool) -> bool:
  return manager.save(
      step,
      args=ocp.args.Composite(**{
          STATE: ocp.args.StandardSave(state),
          CONFIG: ocp.args.JsonSave(json.loads(config.to_json_best_effort())),
          DATASET_INFO: ocp.args.JsonSave(json.loads(dataset_info.to_json())),
      }),
      force=force)


def _error_line(error: BaseException) -> str:
  """The type and first line of an orbax or TensorStore error (they raise many kinds)."""
  lines = str(error).strip().splitlines()
  first = (lines[0] if lines else '').split('. See full TensorStore details')[0]
  return f'{type(error).__name__}: {first}'[:300]


# The unraisable-exception hook in place before _drop_reports_of_reads_left_in_flight.
_previous_unraisablehook = sys.unraisablehook


def _drop_closed_loop_report(unraisable: Any) -> None:
  error = unraisable.exc_value
  if not (isinstance(error, RuntimeError) and str(error) == 'Event loop is closed'):
    _previous_unraisablehook(unraisable)


def _drop_reports_of_reads_left_in_flight() -> None:
  """Silences the tracebacks that restoring a damaged checkpoint causes, from now on.

  When an array of a checkpoint does not restore, orbax fails and closes its event loop
  while TensorStore still reads the others; each of those reads then calls back into the
  closed loop, and Python prints the RuntimeError of each as an unraisable exception: up to
  hundreds of tracebacks, during the restore and after it has returned. Those reports, and
  only those, are dropped (the restore's own error already names the damage).
  """
  global _previous_unraisablehook  # pylint: disable=global-statement
  if sys.unraisablehook is not _drop_closed_loop_report:
    _previous_unraisablehook = sys.unraisablehook
    sys.unraisablehook = _drop_closed_loop_report


def _failed_on_any_process(failed: bool) -> bool:
  """Whether any process failed (every process gets the same answer)."""
  if jax.process_count() == 1:
    return failed
  return bool(np.any(multihost_utils.process_allgather(np.int32(failed))))


def _set_aside(workdir: str | epath.PathLike, step: int, reason: str) -> None:
  """Moves a damaged checkpoint to WORKDIR/damaged_checkpoints/ (process 0), keeping it."""
  if jax.process_index() == 0:
    source = checkpoint_dir(workdir) / str(step)
    damaged = checkpoint_dir(workdir).parent / DAMAGED_DIR
    damaged.mkdir(parents=True, exist_ok=True)
    target = damaged / str(step)
    suffix = 1
    while target.exists():
      target, suffix = damaged / f'{step}.{suffix}', suffix + 1
    source.rename(target)
    logging.warning('Checkpoint %d does not restore (%s): moved to %s; resuming from the one '
                    'before.', step, reason, target)
  multihost_utils.sync_global_devices(f'set_aside_{step}')


def restore_state(manager: ocp.CheckpointManager, abstract_state: Any,
                  workdir: str | epath.PathLike) -> Optional[Any]:
  """The state of the latest checkpoint that restores completely, or None if there is none.

  A checkpoint that does not restore (a truncated or missing file) is moved to
  WORKDIR/damaged_checkpoints/ with one warning line, and the one before it is tried.

  Args:
    abstract_state: the state's tree of jax.ShapeDtypeStruct with shardings; the restored
      arrays are placed with these shardings.
    workdir: the run's directory (that of `manager`).

  Raises:
    ValueError: if a checkpoint holds arrays of other shapes than abstract_state (a changed
      model, resumed with --accept_config_change).
  """
  _drop_reports_of_reads_left_in_flight()
  steps = sorted(manager.all_steps(), reverse=True)
  wants_ema = abstract_state.ema_params is not None
  for step in steps:
    _check_shapes(manager, step, abstract_state)
    has_ema = _saved_ema(manager, step, default=wants_ema)
    # The EMA as saved (config.train.ema_decay may have changed since): its arrays have the
    # parameters' shapes and shardings.
    as_saved = abstract_state.replace(ema_params=abstract_state.params if has_ema else None)
    try:
      restored = manager.restore(
          step, args=ocp.args.Composite(**{STATE: ocp.args.StandardRestore(as_saved)}))
      reason = None
    except Exception as error:  # pylint: disable=broad-except  # Any damage: see _error_line.
      reason = _error_line(error)
    if not _failed_on_any_process(reason is not None):
      state = restored[STATE]
      if has_ema != wants_ema and jax.process_index() == 0:
        logging.warning(
            'Checkpoint %d %s: %s.', step, 'has no EMA' if wants_ema else 'holds an EMA',
            'the average starts at its parameters' if wants_ema else
            'config.train.ema_decay=0 drops it; training, evaluation and samples use the '
            'parameters')
      return state.replace(ema_params=_ema_as_requested(state.params, state.ema_params,
                                                        wants_ema))
    _set_aside(workdir, step, reason or 'another process could not restore it')
    manager.reload()
  if steps and jax.process_index() == 0:
    logging.warning('No checkpoint of %s restores (all moved to %s): starting from step 0.',
                    workdir, checkpoint_dir(workdir).parent / DAMAGED_DIR)
  return None


def _saved_ema(manager: ocp.CheckpointManager, step: int, default: bool) -> bool:
  """Whether checkpoint `step` holds an EMA of the parameters (default if unreadable)."""
  try:
    return manager.item_metadata(step)[STATE]['ema_params'] is not None
  except Exception:  # pylint: disable=broad-except  # Damaged metadata: judged by restore.
    return default


def _ema_as_requested(params: Any, ema_params: Optional[Any], wants_ema: bool) -> Optional[Any]:
  """The EMA a run continues with: none if off, else the saved one or, if none, params."""
  if not wants_ema:
    return None
  if ema_params is None:
    return jax.tree.map(jnp.copy, params)  # Distinct buffers: the train step donates both.
  return ema_params


def _check_shapes(manager: ocp.CheckpointManager, step: int, abstract_state: Any) -> None:
  """Raises ValueError if checkpoint `step` records other parameter shapes than abstract_state.

  A checkpoint whose metadata cannot be read passes: restoring it then fails as damaged.
  """
  try:
    saved_shapes = _param_shapes(manager.item_metadata(step)[STATE]['params'])
  except Exception:  # pylint: disable=broad-except  # Damaged metadata: judged by restore.
    return
  for name, shape in _param_shapes(abstract_state.params).items():
    if name in saved_shapes and saved_shapes[name] != shape:
      raise ValueError(f'checkpoint {step} holds {name} of shape {saved_shapes[name]}, but this '
                       f'config\'s model has {shape}: the change cannot be resumed; '
                       'use a new --workdir.')


def _param_shapes(params: Any) -> dict[str, tuple[int, ...]]:
  """Path, e.g. "['conv']['kernel']" -> shape, of each array of a parameter tree or its metadata."""
  return {jax.tree_util.keystr(path): tuple(leaf.shape)
          for path, leaf in jax.tree_util.tree_leaves_with_path(params) if hasattr(leaf, 'shape')}


def saved_config(manager: ocp.CheckpointManager) -> Optional[ml_collections.ConfigDict]:
  """The config saved with the latest checkpoint that has a readable one, or None.

  Damaged checkpoints are passed over here; `restore_state` sets them aside.
  """
  saved = _latest_json(manager, CONFIG)
  return None if saved is None else config_rules.config_from_saved_json(saved)


def saved_dataset_info(manager: ocp.CheckpointManager) -> Optional[DatasetInfo]:
  """The dataset info saved with the latest checkpoint that has a readable one, or None."""
  saved = _latest_json(manager, DATASET_INFO)
  return None if saved is None else DatasetInfo.from_json(json.dumps(saved))


def _latest_json(manager: ocp.CheckpointManager, item: str) -> Optional[Any]:
  """JSON item `item` of the latest checkpoint where it reads, or None (damage passed over)."""
  for step in sorted(manager.all_steps(), reverse=True):
    try:
      return manager.restore(step, args=ocp.args.Composite(**{item: ocp.args.JsonRestore()}))[item]
    except Exception:  # pylint: disable=broad-except  # Damage of any kind: the next one.
      continue
  return None


def _restore_everything(manager: ocp.CheckpointManager, step: int) -> dict[str, Any]:
  """State (on this process's first device), config and dataset info of checkpoint `step`."""
  metadata = manager.item_metadata(step)[STATE]
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  abstract_state = jax.tree.map(
      lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=device), metadata)
  return manager.restore(step, args=ocp.args.Composite(**{
      STATE: ocp.args.StandardRestore(abstract_state),
      CONFIG: ocp.args.JsonRestore(),
      DATASET_INFO: ocp.args.JsonRestore(),
  }))


# How often a reader lists the checkpoints again after the one it was restoring was deleted
# (by a trainer that keeps only checkpoint.max_to_keep of them) before it gives up.
_DELETED_WHILE_READ_RETRIES = 5


def _restore_newest(manager: ocp.CheckpointManager, workdir: str | epath.PathLike,
                    step: Optional[int]) -> tuple[int, dict[str, Any]]:
  """(step, `_restore_everything`) of `step`, or of the newest checkpoint that restores.

  The steps are listed again after each failure: a trainer running beside this reader saves
  newer checkpoints and deletes older ones, possibly the one being read.

  Raises:
    NoCheckpointError: naming every checkpoint tried and why it failed.
  """
  _drop_reports_of_reads_left_in_flight()
  failures: dict[int, str] = {}
  deleted = 0
  while True:
    manager.reload()
    candidates = sorted((s for s in manager.all_steps()
                         if s not in failures and step in (None, s)), reverse=True)
    if not candidates or deleted > _DELETED_WHILE_READ_RETRIES:
      raise NoCheckpointError(f'{workdir}: no checkpoint restores: ' + '; '.join(
          f'{s} ({reason})' for s, reason in failures.items()))
    candidate = candidates[0]
    try:
      return candidate, _restore_everything(manager, candidate)
    except Exception as error:  # pylint: disable=broad-except  # Any damage: see _error_line.
      failures[candidate] = _error_line(error)
    if not (epath.Path(manager.directory) / str(candidate)).exists():
      failures[candidate] = 'deleted while being read'
      deleted += 1
      logging.info('Checkpoint %d of %s was deleted while being read; listing them again.',
                   candidate, workdir)
    elif step is None:
      logging.warning('Checkpoint %d of %s does not restore (%s); trying the one before.',
                      candidate, workdir, failures[candidate])


@dataclasses.dataclass(frozen=True)
class TrainedModel:
  """A checkpoint restored for inference, and what a caller needs to use it.

  Attributes:
    config: the run's experiment config.
    dataset_info: speakers, sample rate and mel statistics of the training data.
    model: the WaveNet the config describes.
    variables: {'params': ...}: the EMA parameters when the run kept an EMA, else the trained
      parameters, on this process's first device.
    step: the checkpoint's step.
  """
  config: ml_collections.ConfigDict
  dataset_info: DatasetInfo
  model: WaveNet
  variables: dict[str, Any]
  step: int

  def encode(self, waveform: np.ndarray, previous: Any = 0.0) -> np.ndarray:
    """float32 waveform [..., time] -> int32 classes [..., time] (the model's codec)."""
    return self.model.codec.encode(waveform, previous)

  def decode(self, classes: np.ndarray) -> np.ndarray:
    """int classes [..., time] (e.g. `generate`'s) -> float32 waveform [..., time]."""
    return self.model.codec.decode(np.asarray(classes))

  @functools.cached_property
  def features(self) -> Optional[features_lib.Features]:
    """The model's conditioning features (`features.LogMel`, or `features.FileFeatures` for
    features from files); None if not locally conditioned."""
    if not self.model.local_cond_channels:
      return None
    return features_lib.from_config(self.config.data, self.dataset_info)

  def speaker_id(self, speaker: str) -> int:
    """A speaker given by name or by id -> its id; ValueError naming the known speakers."""
    speakers = self.dataset_info.speakers
    if speaker in speakers:
      return speakers.index(speaker)
    if speaker.isdigit() and int(speaker) < len(speakers):
      return int(speaker)
    raise ValueError(f'speaker={speaker!r} is unknown; known speakers (id: name): '
                     + ', '.join(f'{i}: {name}' for i, name in enumerate(speakers)))

  def conditioning(self, batch_size: int = 1, *, speaker: Optional[str] = None,
                   mel_from: Optional[np.ndarray] = None,
                   features: Optional[np.ndarray] = None,
                   prompt: Optional[np.ndarray] = None) -> dict[str, Optional[np.ndarray]]:
    """The inputs of `synthesis.synthesize` for batch_size clips, checked against the model.

    Args:
      batch_size: clips (every one gets the same conditioning).
      speaker: a speaker name or id; required by, and only for, a speaker-conditioned model.
      mel_from: float32 [time] waveform whose log-mel conditions a mel-conditioned model.
      features: float32 [frames, channels] frames that condition a locally conditioned model,
        as stored for training (`TrainedModel.features`: for a mel-conditioned one, log-mel
        frames of its convention, not normalised). A locally conditioned model needs
        mel_from or features (mel_from only for a mel-conditioned one); others neither.
      prompt: float32 [time] waveform to continue; None: none.

    Returns:
      {'global_cond': int32 [batch_size] or None, 'local_cond': float32 [batch_size, frames,
      channels] normalised, or None, 'prompt': int32 [batch_size, time] or None}.

    Raises:
      ValueError: starting with the argument at fault (a missing or unexpected one, an unknown
        speaker).
    """
    global_cond = local_cond = prompt_classes = None
    if self.model.num_speakers:
      if speaker is None:
        raise ValueError('speaker is needed: this model is speaker-conditioned; known speakers: '
                         + ', '.join(self.dataset_info.speakers))
      global_cond = np.full([batch_size], self.speaker_id(speaker), np.int32)
    elif speaker is not None:
      raise ValueError('speaker given, but this model is not speaker-conditioned.')
    if mel_from is not None and features is not None:
      raise ValueError('mel_from and features given: the local conditioning takes one.')
    if self.features is None:
      if mel_from is not None or features is not None:
        raise ValueError(f'{"features" if mel_from is None else "mel_from"} given, but this '
                         'model has no local (mel) conditioning.')
    elif features is not None:
      local_cond = self.features.normalise(features, 'features')
    elif not isinstance(self.features, features_lib.LogMel):
      raise ValueError('features is needed: this model is conditioned on features from files '
                       f'([frames, {self.features.channels}] arrays).')
    elif mel_from is None:
      raise ValueError('mel_from is needed: this model is a vocoder (mel-conditioned).')
    else:
      local_cond = self.features(mel_from)
    if local_cond is not None:
      local_cond = np.repeat(local_cond[None], batch_size, axis=0)
    if prompt is not None:
      prompt_classes = np.repeat(self.encode(prompt)[None], batch_size, axis=0)
    return {'global_cond': global_cond, 'local_cond': local_cond, 'prompt': prompt_classes}


def _read_only_manager(workdir: str | epath.PathLike,
                       step: Optional[int] = None) -> ocp.CheckpointManager:
  """A manager that reads workdir's checkpoints and writes nothing (close it after use).

  Raises:
    NoCheckpointError: if the workdir has no complete checkpoint (or not `step`).
  """
  directory = checkpoint_dir(workdir)
  if not directory.is_dir():
    raise NoCheckpointError(f'{workdir}: no checkpoint (no directory {directory}).')
  manager = ocp.CheckpointManager(
      directory, options=ocp.CheckpointManagerOptions(read_only=True, create=False),
      item_handlers=_item_handlers())
  steps = manager.all_steps()
  if not steps or (step is not None and step not in steps):
    manager.close()
    if not steps:
      raise NoCheckpointError(f'{workdir}: no complete checkpoint in {directory}.')
    raise NoCheckpointError(f'{workdir}: no checkpoint for step {step} (have {sorted(steps)}).')
  return manager


def restore_for_inference(workdir: str | epath.PathLike,
                          step: Optional[int] = None) -> TrainedModel:
  """Loads a trained model from a workdir, on this process's first device.

  Args:
    workdir: a training run's directory.
    step: the checkpoint step; None = the latest.

  A latest checkpoint that does not restore (a truncated or missing file) is passed over
  with one warning line, and left where it is (train.py sets such checkpoints aside).

  Raises:
    NoCheckpointError: if the workdir has no checkpoint that restores (or not `step`).
  """
  manager = _read_only_manager(workdir, step)
  try:
    step, restored = _restore_newest(manager, workdir, step)
  finally:
    manager.close()
  config = config_rules.config_from_saved_json(restored[CONFIG])
  dataset_info = DatasetInfo.from_json(json.dumps(restored[DATASET_INFO]))
  model = model_from_config(config.model, config.data, dataset_info.speakers)
  state = restored[STATE]
  params = state['ema_params'] if state.get('ema_params') is not None else state['params']
  return TrainedModel(config=config, dataset_info=dataset_info, model=model,
                      variables={'params': params}, step=step)


@dataclasses.dataclass(frozen=True)
class InitSource:
  """Another run's checkpoint that a new run starts from (config.train.init_from).

  Attributes:
    spec: the setting, 'WORKDIR' (its latest checkpoint) or 'WORKDIR@STEP'.
    workdir: the other run's directory.
    step: the checkpoint's step.
    config: that run's experiment config.
    dataset_info: its dataset info (speakers, feature statistics).
    param_shapes: "['name']['kernel']"-style path -> shape of each of its parameters.
  """
  spec: str
  workdir: str
  step: int
  config: ml_collections.ConfigDict
  dataset_info: DatasetInfo
  param_shapes: dict[str, tuple[int, ...]]

  def check_fits(self, abstract_params: Any, data_config: ml_collections.ConfigDict) -> None:
    """Raises ValueError, in one line naming the parameter or config key, unless
    abstract_params (a tree of arrays or jax.ShapeDtypeStruct) holds exactly the checkpoint's
    parameters and shapes, and config.data its sample rate and features' hop."""
    for key, theirs, mine in (
        ('sample_rate', self.config.data.sample_rate, data_config.sample_rate),
        ('features\' hop length', features_lib.channels_and_hop(self.config.data)[1],
         features_lib.channels_and_hop(data_config)[1])):
      if self.config.model.local_conditioning or key == 'sample_rate':
        if int(theirs) != int(mine):
          raise ValueError(f'config.train.init_from={self.spec!r}: its run has config.data '
                           f'{key} {theirs}, this config {mine}.')
    ours = _param_shapes(abstract_params)
    for name in sorted(ours.keys() | self.param_shapes.keys()):
      theirs, mine = self.param_shapes.get(name, 'none'), ours.get(name, 'none')
      if theirs != mine:
        raise ValueError(f'config.train.init_from={self.spec!r}: its checkpoint {self.step} holds '
                         f'params{name} of shape {theirs}, but this config\'s model has {mine}: '
                         'start from a run of the same architecture.')

  def with_its_normalisation(self, info: DatasetInfo,
                             data_config: ml_collections.ConfigDict) -> DatasetInfo:
    """info with the checkpoint's feature statistics as those of config.data's features.

    A model reads its features normalised as it was trained (a vocoder's input convention):
    the new data's statistics would shift them. Its log-mel statistics become those of
    features from files when the new run reads its frames from files (GTA mels).
    """
    if not self.config.model.local_conditioning:
      return info
    theirs = features_lib.from_config(self.config.data, self.dataset_info)
    prefix = 'mel' if features_lib.source(data_config) == features_lib.MEL else 'features'
    return dataclasses.replace(info, **{f'{prefix}_mean': theirs.mean, f'{prefix}_std': theirs.std})

  def restore_params(self, abstract_params: Any,
                     elsewhere: jax.sharding.Sharding) -> tuple[Any, Optional[Any]]:
    """(params, EMA parameters or None if the run kept none) of the checkpoint.

    Args:
      abstract_params: the parameters' tree of jax.ShapeDtypeStruct with shardings (passed
        `check_shapes`); both results are placed so.
      elsewhere: where the rest of the state (read, not returned) is placed.
    """
    manager = _read_only_manager(self.workdir, self.step)
    try:
      metadata = manager.item_metadata(self.step)[STATE]
      abstract = {key: jax.tree.map(
          lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=elsewhere), value)
                  for key, value in metadata.items()}
      abstract['params'] = abstract_params
      if metadata.get('ema_params') is not None:
        abstract['ema_params'] = abstract_params
      state = manager.restore(self.step, args=ocp.args.Composite(**{
          STATE: ocp.args.StandardRestore(abstract)}))[STATE]
    finally:
      manager.close()
    return state['params'], state.get('ema_params')

  def warm_started(self, fresh: Any, abstract: Any, elsewhere: jax.sharding.Sharding) -> Any:
    """fresh (a train state at step 0: its optimizer state and rng) with these parameters and EMA.

    Args:
      abstract: fresh's tree of jax.ShapeDtypeStruct with shardings.
      elsewhere: where the rest of init's checkpoint is read to (`restore_params`).
    """
    params, ema_params = self.restore_params(abstract.params, elsewhere)
    return fresh.replace(params=params, ema_params=_ema_as_requested(
        params, ema_params, wants_ema=fresh.ema_params is not None))


def init_source(spec: str) -> InitSource:
  """The checkpoint that config.train.init_from = spec names ('WORKDIR' or 'WORKDIR@STEP').

  Reads its config, dataset info and parameter shapes (not its arrays).

  Raises:
    ValueError: in one line starting with config.train.init_from, for a workdir without that
      checkpoint, or one that does not read.
  """
  workdir, step = spec, None
  head, at, tail = spec.rpartition('@')
  if at and tail.isdigit():
    workdir, step = head, int(tail)
  try:
    manager = _read_only_manager(workdir, step)
  except NoCheckpointError as error:
    raise ValueError(f'config.train.init_from={spec!r}: {error}') from None
  try:
    step = max(manager.all_steps()) if step is None else step
    saved = manager.restore(step, args=ocp.args.Composite(**{
        CONFIG: ocp.args.JsonRestore(), DATASET_INFO: ocp.args.JsonRestore()}))
    shapes = _param_shapes(manager.item_metadata(step)[STATE]['params'])
  except Exception as error:  # pylint: disable=broad-except  # Any damage: see _error_line.
    raise ValueError(f'config.train.init_from={spec!r}: checkpoint {step} does not read '
                     f'({_error_line(error)}).') from None
  finally:
    manager.close()
  return InitSource(spec=spec, workdir=workdir, step=step,
                    config=config_rules.config_from_saved_json(saved[CONFIG]),
                    dataset_info=DatasetInfo.from_json(json.dumps(saved[DATASET_INFO])),
                    param_shapes=shapes)


def grow_speaker_rows(restored: Any, fresh: Any) -> Any:
  """A restored train state, with the rows that a grown speaker table adds taken from fresh.

  Only the speaker embedding (and its optimizer and EMA state) differs in shape: its rows
  [0, restored rows) are the checkpoint's, the rest fresh's (initialised like a new run's,
  zero optimizer moments).
  """
  def grow(old: jax.Array, new: jax.Array) -> jax.Array:
    if old.shape == new.shape:
      return old
    return jax.device_put(jnp.concatenate([old, new[old.shape[0]:]]), new.sharding)

  return jax.tree.map(grow, restored, fresh)
