"""Tests of wavenet_jax/sharding.py: how the mesh resolves its sizes, batch shardings, errors."""
import json
import subprocess
import sys
import textwrap

import ml_collections
import numpy as np
import pytest

import training_runs
from wavenet_jax import sharding


def _mesh_config(data, fsdp):
  return ml_collections.ConfigDict({'data': data, 'fsdp': fsdp})


@pytest.mark.parametrize('data, fsdp', [(-1, 1), (1, -1), (1, 1)])
def test_one_device_mesh(data, fsdp):
  mesh = sharding.create_mesh(_mesh_config(data, fsdp))
  assert dict(mesh.shape) == {'data': 1, 'fsdp': 1}


@pytest.mark.parametrize('data, fsdp, message', [
    (-1, -1, 'at most one -1'),
    (0, 1, 'must be positive'),
    (-2, 1, 'must be positive'),
    (-1, 2, "1 devices do not split into {'data': -1, 'fsdp': 2}"),
    (2, 1, "{'data': 2, 'fsdp': 1} needs 2 devices, but there are 1"),
])
def test_impossible_sizes_are_errors_naming_config_mesh(data, fsdp, message):
  with pytest.raises(ValueError, match='config.mesh: ') as error:
    sharding.create_mesh(_mesh_config(data, fsdp))
  assert message in str(error.value)


@pytest.mark.slow
def test_eight_devices_resolve_minus_one_and_split_batches_by_the_rules(tmp_path):
  probe = textwrap.dedent("""
      import json
      import ml_collections
      import numpy as np
      from wavenet_jax import sharding

      def shapes(data, fsdp):
        mesh = sharding.create_mesh(ml_collections.ConfigDict({'data': data, 'fsdp': fsdp}))
        return dict(mesh.shape)

      mesh = sharding.create_mesh(ml_collections.ConfigDict({'data': -1, 'fsdp': 2}))
      both = (('batch', ('data', 'fsdp')),)
      data_only = (('batch', 'data'),)
      batch = sharding.global_batch({'audio': np.arange(16 * 3).reshape(16, 3)},
                                    sharding.batch_sharding(mesh, both), 16)['audio']
      print(json.dumps({
          'shapes': [shapes(-1, 1), shapes(-1, 2), shapes(2, -1), shapes(8, 1)],
          'shards': [sharding.num_batch_shards(mesh, both),
                     sharding.num_batch_shards(mesh, data_only),
                     sharding.num_batch_shards(mesh, (('batch', None),))],
          'rows_per_device': sorted({shard.data.shape[0] for shard in batch.addressable_shards}),
          'batch': np.asarray(batch).tolist(),
      }))
      """)
  result = subprocess.run([sys.executable, '-c', probe], cwd=training_runs.REPO,
                          env=training_runs.run_env(JAX_NUM_CPU_DEVICES='8'),
                          capture_output=True, text=True, timeout=120)
  assert result.returncode == 0, result.stderr[-3000:]
  figures = json.loads(result.stdout.splitlines()[-1])
  assert figures['shapes'] == [{'data': 8, 'fsdp': 1}, {'data': 4, 'fsdp': 2},
                               {'data': 2, 'fsdp': 4}, {'data': 8, 'fsdp': 1}]
  assert figures['shards'] == [8, 4, 1]
  assert figures['rows_per_device'] == [2]
  assert figures['batch'] == np.arange(16 * 3).reshape(16, 3).tolist()
