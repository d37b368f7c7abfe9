"""Checkpoints: orbax CheckpointManager in WORKDIR/checkpoints/<step>/.

Each checkpoint holds three items, written together (a step directory appears only when all
three are complete, so a run killed mid-save restarts from the previous step):
  state/         the TrainState (params, opt_state, ema_params, step, rng)
  config/        the experiment config as JSON
  dataset_info/  dataset_info.DatasetInfo as JSON (speakers, mel statistics)

`restore_for_inference` rebuilds the model from a workdir alone (for evaluate.py, sampling).
"""
import dataclasses
import json
from typing import Any, Optional

from etils import epath
import jax
import ml_collections
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers

from wavenet_jax.dataset_info import DatasetInfo
from wavenet_jax.models import WaveNet, model_from_config

STATE = 'state'
CONFIG = 'config'
DATASET_INFO = 'dataset_info'
ITEM_NAMES = (STATE, CONFIG, DATASET_INFO)


class NoCheckpointError(FileNotFoundError):
  """The workdir holds no (complete) checkpoint; the message names the directory."""


def checkpoint_dir(workdir: str | epath.PathLike) -> epath.Path:
  """WORKDIR/checkpoints, absolute; workdir is a local path or a URL such as gs://bucket/run."""
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
      create=not read_only,
      read_only=read_only)
  return ocp.CheckpointManager(checkpoint_dir(workdir), options=options, item_names=ITEM_NAMES)


def save(manager: ocp.CheckpointManager, step: int, state: Any,
         config: ml_collections.ConfigDict, dataset_info: DatasetInfo, *,
         force: bool = False) -> bool:
  """Starts an asynchronous save of `state` at `step` if the policy (or `force`) says so.

  Called on every process (orbax coordinates the hosts). Returns whether a save started.
  """
  return manager.save(
      step,
      args=ocp.args.Composite(**{
          STATE: ocp.args.StandardSave(state),
          CONFIG: ocp.args.JsonSave(json.loads(config.to_json_best_effort())),
          DATASET_INFO: ocp.args.JsonSave(json.loads(dataset_info.to_json())),
      }),
      force=force)


def restore_state(manager: ocp.CheckpointManager, abstract_state: Any) -> Optional[Any]:
  """The state of the latest complete checkpoint, or None if there is none.

  Args:
    abstract_state: the state's tree of jax.ShapeDtypeStruct with shardings; the restored
      arrays are placed with these shardings.
  """
  step = manager.latest_step()
  if step is None:
    return None
  restored = manager.restore(
      step, args=ocp.args.Composite(**{STATE: ocp.args.StandardRestore(abstract_state)}))
  return restored[STATE]


def saved_config(manager: ocp.CheckpointManager) -> Optional[ml_collections.ConfigDict]:
  """The config saved with the latest complete checkpoint, or None if there is none."""
  step = manager.latest_step()
  if step is None:
    return None
  restored = manager.restore(step, args=ocp.args.Composite(**{CONFIG: ocp.args.JsonRestore()}))
  return _config_from_json(restored[CONFIG])


# Config keys added after the first checkpoints were written, with the value that those
# checkpoints' models had: restore fills them in (the one place that sees old checkpoints).
_ADDED_CONFIG_KEYS = {
    'model.embedding_init': 'normal',
}


def _config_from_json(config_json: dict[str, Any]) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict(config_json)
  for key, value in _ADDED_CONFIG_KEYS.items():
    section, name = key.rsplit('.', 1)
    if name not in config[section]:
      config[section][name] = value
  return config


@dataclasses.dataclass(frozen=True)
class TrainedModel:
  """A checkpoint restored for inference.

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


def restore_for_inference(workdir: str | epath.PathLike,
                          step: Optional[int] = None) -> TrainedModel:
  """Loads a trained model from a workdir, on this process's first device.

  Args:
    workdir: a training run's directory.
    step: the checkpoint step; None = the latest.

  Raises:
    NoCheckpointError: if the workdir has no checkpoint (or not `step`).
  """
  directory = checkpoint_dir(workdir)
  if not directory.is_dir():
    raise NoCheckpointError(f'{workdir}: no checkpoint (no directory {directory}).')
  manager = ocp.CheckpointManager(
      directory, options=ocp.CheckpointManagerOptions(read_only=True, create=False),
      item_handlers={STATE: ocp.StandardCheckpointHandler(),
                     CONFIG: ocp.JsonCheckpointHandler(),
                     DATASET_INFO: ocp.JsonCheckpointHandler()})
  steps = manager.all_steps()
  if not steps:
    raise NoCheckpointError(f'{workdir}: no complete checkpoint in {directory}.')
  step = max(steps) if step is None else step
  if step not in steps:
    raise NoCheckpointError(f'{workdir}: no checkpoint for step {step} (have {sorted(steps)}).')
  metadata = manager.item_metadata(step)[STATE]
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  abstract_state = jax.tree.map(
      lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=device), metadata)
  restored = manager.restore(step, args=ocp.args.Composite(**{
      STATE: ocp.args.StandardRestore(abstract_state),
      CONFIG: ocp.args.JsonRestore(),
      DATASET_INFO: ocp.args.JsonRestore(),
  }))
  manager.close()
  config = _config_from_json(restored[CONFIG])
  dataset_info = DatasetInfo.from_json(json.dumps(restored[DATASET_INFO]))
  model = model_from_config(config.model, config.data, dataset_info.speakers)
  state = restored[STATE]
  params = state['ema_params'] if state.get('ema_params') is not None else state['params']
  return TrainedModel(config=config, dataset_info=dataset_info, model=model,
                      variables={'params': params}, step=step)
