"""The run-time path without TensorFlow: prepared data, the inference imports, catalog errors.

Each test runs its code in a subprocess through tests/tensorflow_guard.py, in which
TensorFlow is absent as where it is not installed.
"""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import training_runs
from experiments import default
from wavenet_jax import input_pipeline

GUARD = os.path.join(training_runs.REPO, 'tests', 'tensorflow_guard.py')
pytestmark = pytest.mark.slow


def _run_without_tensorflow(tmp_path, code: str, *args: str) -> tuple[str, list[str]]:
  """(stdout, the TensorFlow modules imported) of `code` run with TensorFlow absent."""
  script = tmp_path / 'script.py'
  script.write_text(textwrap.dedent(code))
  report = tmp_path / 'tensorflow_modules.json'
  result = subprocess.run(
      [sys.executable, GUARD, str(script), *args], cwd=training_runs.REPO,
      env=training_runs.run_env(TENSORFLOW_GUARD_REPORT=str(report)), capture_output=True,
      text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  return result.stdout, json.loads(report.read_text())


def _data_config(tmp_path):
  config = default.get_config().data
  config.update(data_dir=str(tmp_path / 'tfds'), segment_length=400, read_threads=2)
  config.mel.update(n_mels=8)
  return config


_BATCHES = """
    import json, sys
    import ml_collections
    import numpy as np
    from wavenet_jax import input_pipeline
    config = ml_collections.ConfigDict(json.loads(sys.argv[1]))
    dataset = input_pipeline.prepare_dataset(config)
    batches = dataset.train_batches(receptive_field=64, global_batch_size=4, seed=3,
                                    start_step=5, with_speaker=True, with_mel=True)
    evals = dataset.eval_batches(receptive_field=64, global_batch_size=4, num_batches=1,
                                 with_speaker=True, with_mel=True)
    arrays = {f'train{i}_{key}': value for i in range(2) for key, value in next(batches).items()}
    arrays.update({f'eval_{key}': value for key, value in next(iter(evals)).items()})
    np.savez(sys.argv[2], mel_mean=dataset.info.mel_mean, **arrays)
    """


def test_prepared_data_reads_the_same_batches_without_tensorflow(tmp_path):
  config = _data_config(tmp_path)
  dataset = input_pipeline.prepare_dataset(config)
  batches = dataset.train_batches(receptive_field=64, global_batch_size=4, seed=3,
                                  start_step=5, with_speaker=True, with_mel=True)
  expected = {f'train{i}_{key}': value for i in range(2) for key, value in next(batches).items()}
  evals = dataset.eval_batches(receptive_field=64, global_batch_size=4, num_batches=1,
                               with_speaker=True, with_mel=True)
  expected.update({f'eval_{key}': value for key, value in next(iter(evals)).items()})
  expected['mel_mean'] = dataset.info.mel_mean
  # Read (what this process prepared) and prepare anew (another data_dir), without TensorFlow.
  fresh = _data_config(tmp_path / 'fresh')
  for name, data_config in (('read', config), ('prepared', fresh)):
    _run_without_tensorflow(tmp_path, _BATCHES, data_config.to_json(),
                            str(tmp_path / f'{name}.npz'))
    actual = dict(np.load(tmp_path / f'{name}.npz'))
    assert actual.keys() == expected.keys()
    for key, value in expected.items():
      np.testing.assert_array_equal(actual[key], value, err_msg=f'{name}: {key}')


@pytest.mark.parametrize('tool', ['sample', 'evaluate'])
def test_inference_path_imports_neither_tensorflow_nor_the_data_stack(tmp_path, tool):
  stdout, _ = _run_without_tensorflow(tmp_path, f"""
      import json, sys
      import {tool}
      from wavenet_jax import checkpointing, evaluation, sampler, synthesis
      print(json.dumps(sorted({{name.split('.')[0] for name in sys.modules}})))
      """)
  modules = set(json.loads(stdout.splitlines()[-1]))
  assert 'wavenet_jax' in modules and 'orbax' in modules
  assert not modules & {'tensorflow', 'tensorflow_datasets', 'grain', 'array_record', 'librosa',
                        'matplotlib', 'scipy', 'pesq', 'pystoi'}


def test_importing_the_package_stays_light(tmp_path):
  stdout, _ = _run_without_tensorflow(tmp_path, """
      import json, sys
      import wavenet_jax
      print(json.dumps(sorted({name.split('.')[0] for name in sys.modules})))
      """)
  modules = set(json.loads(stdout.splitlines()[-1]))
  assert not modules & {'tensorflow', 'tensorflow_datasets', 'grain', 'librosa', 'matplotlib',
                        'scipy', 'orbax', 'optax', 'soundfile', 'pesq', 'pystoi'}


def test_catalog_dataset_without_tensorflow_names_the_extra(tmp_path):
  stdout, _ = _run_without_tensorflow(tmp_path, """
      import json, sys
      import ml_collections
      from wavenet_jax import datasets
      config = ml_collections.ConfigDict(json.loads(sys.argv[1]))
      try:
        datasets.audio_source(config)
      except ValueError as error:
        print(error)
      """, _data_config(tmp_path).to_json().replace('"audio_folder"', '"ljspeech"'))
  message = stdout.strip()
  assert '\n' not in message
  assert "config.data.name='ljspeech'" in message
  assert "pip install 'wavenet-jax[tensorflow]'" in message
