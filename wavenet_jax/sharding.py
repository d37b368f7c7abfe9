"""Device mesh and shardings: logical axis names -> mesh axes by the config's rules.

The mesh has two axes, `data` and `fsdp` (config.mesh.data x config.mesh.fsdp devices;
-1 = all devices the other axis leaves). Parameters carry logical axis names (see
models.py); `config.sharding_rules` maps each to a mesh axis or None (replicated). Batches
are split along their leading dimension over the logical axis 'batch'. Generation splits its
batch over a one-axis mesh of its own (`batch_mesh`).
"""
from typing import Any, Mapping, Optional, Sequence

import flax.linen as nn
import jax
import ml_collections
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

MESH_AXES = ('data', 'fsdp')
BATCH = 'batch'

Rules = Sequence[tuple[str, Any]]


def create_mesh(mesh_config: ml_collections.ConfigDict) -> Mesh:
  """A ('data', 'fsdp') mesh over all devices of all processes.

  Args:
    mesh_config: config.mesh with integer sizes `data` and `fsdp`; one of them may be -1
      (all devices the other leaves).

  Raises:
    ValueError: if the sizes do not multiply to the number of devices.
  """
  num_devices = jax.device_count()
  sizes = [int(mesh_config[axis]) for axis in MESH_AXES]
  if sizes.count(-1) > 1 or any(size == 0 or size < -1 for size in sizes):
    raise ValueError(f'config.mesh: sizes {dict(zip(MESH_AXES, sizes))} must be positive, '
                     'with at most one -1.')
  if -1 in sizes:
    known = int(np.prod([size for size in sizes if size != -1]))
    if num_devices % known:
      raise ValueError(f'config.mesh: {num_devices} devices do not split into '
                       f'{dict(zip(MESH_AXES, sizes))}.')
    sizes[sizes.index(-1)] = num_devices // known
  if int(np.prod(sizes)) != num_devices:
    raise ValueError(f'config.mesh: {dict(zip(MESH_AXES, sizes))} needs {int(np.prod(sizes))} '
                     f'devices, but there are {num_devices}.')
  return jax.make_mesh(tuple(sizes), MESH_AXES, axis_types=(AxisType.Auto,) * len(MESH_AXES))


def batch_mesh(batch_size: int, devices: Optional[Sequence[jax.Device]] = None) -> Mesh:
  """A one-axis mesh (BATCH,) over the most of `devices` that split batch_size evenly.

  Args:
    batch_size: sequences generated together.
    devices: candidates, in order; default this process's devices.
  """
  devices = list(jax.local_devices() if devices is None else devices)
  count = max(n for n in range(1, len(devices) + 1) if batch_size % n == 0)
  return Mesh(np.asarray(devices[:count]), (BATCH,))


def rules_from_config(config: ml_collections.ConfigDict) -> tuple[tuple[str, Any], ...]:
  """config.sharding_rules as a tuple of (logical axis, mesh axis / tuple / None)."""
  return tuple((name, tuple(axes) if isinstance(axes, (list, tuple)) else axes)
               for name, axes in config.sharding_rules)


def logical_shardings(boxed_tree: Any, mesh: Mesh, rules: Rules) -> Any:
  """NamedShardings for a tree whose leaves may be boxed with logical axis names.

  Args:
    boxed_tree: a tree (e.g. from `jax.eval_shape`) with `nn.Partitioned` leaves where
      names are known; other leaves are replicated.

  Returns:
    a tree of NamedSharding with the structure of `nn.unbox(boxed_tree)`.
  """
  return nn.logical_to_mesh_sharding(nn.get_partition_spec(boxed_tree), mesh, rules)


def batch_sharding(mesh: Mesh, rules: Rules) -> NamedSharding:
  """Sharding of batch arrays: the leading dimension over the mesh axes of 'batch'."""
  return NamedSharding(mesh, nn.logical_to_mesh_axes((BATCH,), rules) or PartitionSpec())


def num_batch_shards(mesh: Mesh, rules: Rules) -> int:
  """How many ways the leading batch dimension is split."""
  spec = batch_sharding(mesh, rules).spec
  axes = spec[0] if spec else None
  if axes is None:
    return 1
  axes = (axes,) if isinstance(axes, str) else axes
  return int(np.prod([mesh.shape[axis] for axis in axes]))


def global_batch(local_batch: Mapping[str, np.ndarray], sharding: NamedSharding,
                 global_batch_size: int) -> dict[str, jax.Array]:
  """Assembles this process's rows of a batch into global arrays.

  Args:
    local_batch: name -> [global_batch_size / process_count, ...] numpy array.
    sharding: from `batch_sharding`.
    global_batch_size: rows over all processes.

  Returns:
    name -> [global_batch_size, ...] jax.Array sharded by `sharding`.
  """
  return {
      name: jax.make_array_from_process_local_data(
          sharding, value, (global_batch_size,) + value.shape[1:])
      for name, value in local_batch.items()}
