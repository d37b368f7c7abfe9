"""A model conditioned on linguistic features from .lab files: trains, evaluates, samples.

One tiny speaker- and label-conditioned run on a synthetic labelled folder (two tones per
speaker, festival-style .lab files) is trained for the module; sample.py --features must write
what the library's synthesis gives for the same frames, and bad --features fail in one line.
"""
import json
import re

from absl import flags
import jax
import numpy as np
import pytest
import soundfile

import training_runs
from test_sample import _run_main
from wavenet_jax import audio as audio_lib
from wavenet_jax import checkpointing
from wavenet_jax import input_pipeline
from wavenet_jax import linguistic
from wavenet_jax import synthesis
from wavenet_jax import trainer

RATE = 16000
PHONES = 'pau aa m'
LAB = ('start\tend\tphone\tvowel\tstress\tword\tsyl_in_word\tword_syls\n'
       '0.0000\t0.0400\tpau\t0\t0\t-\t0\t0\n'
       '0.0400\t0.0900\tm\t0\t1\tma\t0\t1\n'
       '0.0900\t0.2000\taa\t1\t1\tma\t0\t1\n')
TTS_OVERRIDES = {
    'model.local_conditioning': True, 'model.global_conditioning': True,
    'model.upsample_method': 'repeat', 'data.features.source': 'labels',
    'data.features.phones': PHONES, 'data.validation_fraction': 0.25,
}


@pytest.fixture(scope='module')
def labelled_folder(tmp_path_factory):
  """Two speakers x two 0.2 s tones (a pause, then the tone), festival-style .lab beside each."""
  root = tmp_path_factory.mktemp('tts')
  time = np.arange(int(0.2 * RATE)) / RATE
  for speaker, base in (('low', 120.0), ('high', 220.0)):
    (root / speaker).mkdir()
    for i in range(2):
      tone = 0.4 * np.sin(2 * np.pi * base * (1 + 0.1 * i) * time) * (time > 0.04)
      audio_lib.write_wav(root / speaker / f'{speaker}_{i}.wav', tone, RATE)
      (root / speaker / f'{speaker}_{i}.lab').write_text(LAB)
  return root


@pytest.fixture(scope='module')
def tts_run(tmp_path_factory, labelled_folder):
  workdir = str(tmp_path_factory.mktemp('tts_run'))
  trainer.train_and_evaluate(training_runs.tiny_config({
      **TTS_OVERRIDES, 'data.wav_dir': str(labelled_folder),
      'data.data_dir': str(tmp_path_factory.mktemp('tfds')), 'train.num_steps': 2,
      'checkpoint.every_steps': 2, 'sample.every_steps': 0}), workdir)
  return workdir


@pytest.fixture(scope='module')
def frames_file(tmp_path_factory, labelled_folder):
  """The features of one labelled file, written by `python -m wavenet_jax.features`' code."""
  path = tmp_path_factory.mktemp('frames') / 'low_0.npy'
  linguistic.write_features(labelled_folder / 'low' / 'low_0.wav', path, RATE,
                            linguistic.DEFAULT_HOP_LENGTH, linguistic.phone_set(PHONES))
  return path


def test_standard_non_binary_leaves_the_one_hots_and_flags_and_standardises_the_rest(
    labelled_folder, tmp_path):
  """'standard_non_binary': offset 0 and scale 1 for the channels that hold only 0 and 1 (the
  phone one-hots, vowel, stress and voiced flags), mean and std for the others (position,
  duration, log-F0)."""
  config = training_runs.tiny_config({
      **TTS_OVERRIDES, 'data.wav_dir': str(labelled_folder), 'data.data_dir': str(tmp_path),
      'data.features.normalisation': 'standard_non_binary'})
  dataset = input_pipeline.prepare_dataset(config.data)
  examples = dataset.source.data_source('train')
  frames = np.concatenate([np.asarray(examples[i]['features']) for i in range(len(examples))])
  binary = np.all((frames == 0) | (frames == 1), axis=0)
  phones = len(linguistic.phone_set(PHONES)) + 1
  position, duration, vowel, stress, log_f0, voiced = range(3 * phones, 3 * phones + 6)
  assert binary[:3 * phones].all() and binary[[vowel, stress, voiced]].all()
  assert not binary[[position, duration, log_f0]].any()
  info = dataset.info
  np.testing.assert_array_equal(info.features_mean[binary], 0.0)
  np.testing.assert_array_equal(info.features_std[binary], 1.0)
  np.testing.assert_allclose(info.features_mean[log_f0], frames[:, log_f0].mean(), rtol=1e-5)
  np.testing.assert_allclose(info.features_std[log_f0], frames[:, log_f0].std(), rtol=1e-5)


@pytest.mark.slow  # Trains, then compiles the sampler.
def test_sample_features_writes_the_librarys_synthesis(tts_run, frames_file, tmp_path, capsys):
  output = tmp_path / 'out.wav'
  result = _run_main(capsys, f'--workdir={tts_run}', f'--output={output}',
                     f'--features={frames_file}', '--speaker=high', '--segments=1', '--seed=3')
  assert result.returncode == 0, result.stderr
  written, _ = soundfile.read(output, dtype='float32')
  trained = checkpointing.restore_for_inference(tts_run)
  frames = np.load(frames_file)
  conditioning = trained.conditioning(1, speaker='high', features=frames)
  expected = synthesis.synthesize(trained.model, trained.variables, jax.random.key(3),
                                  num_samples=len(frames) * 80 - 1, batch_size=1, segments=1,
                                  **conditioning)[0]
  assert len(written) == len(frames) * 80  # As long as the frames describe.
  np.testing.assert_allclose(written, np.clip(expected, -1, 1), atol=1 / 32768)


@pytest.mark.slow  # Trains, then compiles the scorer.
def test_evaluate_scores_a_labelled_folder_and_skips_files_without_labels(tts_run,
                                                                          labelled_folder,
                                                                          tmp_path):
  folder = tmp_path / 'eval'
  (folder / 'low').mkdir(parents=True)
  for name in ('low_0.wav', 'low_0.lab', 'low_1.wav'):  # low_1 has no .lab.
    (folder / 'low' / name).write_bytes((labelled_folder / 'low' / name).read_bytes())
  result = training_runs.run_script('evaluate.py', f'--workdir={tts_run}',
                                    f'--wav_dir={folder}')
  assert result.returncode == 0, result.stderr
  scores = json.loads(result.stdout.strip().splitlines()[-1])
  assert scores['num_files'] == 1 and 0 < scores['bits_per_sample'] < 12  # Two steps: about uniform.
  assert 'no labels file' in scores['skipped']['low/low_1.wav']
  # The vocoder report does not measure such a model: one line naming the tools that do.
  result = training_runs.run_script('-m', 'experiments.tools.report', f'--workdir={tts_run}',
                                    f'--output_dir={tmp_path / "report"}')
  assert result.returncode == 1 and 'Traceback' not in result.stderr
  assert "a model on features from 'labels'; score it with evaluate.py" in result.stderr


@pytest.mark.slow  # Trains.
@pytest.mark.parametrize('make, message', [
    (lambda path: np.save(path, np.zeros((5, 3), np.float32)),
     r'--features=\S+: features of shape \(5, 3\), but this model reads \[frames, \d+\] arrays'),
    (lambda path: np.save(path, np.zeros((0, 3), np.float32)), r'an array of shape \(0, 3\)'),
    (lambda path: np.save(path, np.full((5, 3), np.nan, np.float32)), 'holds NaN'),
    (lambda path: path.write_text('not numpy'), 'not a .npy array'),
])
def test_bad_features_are_one_line_before_any_work(tts_run, tmp_path, capsys, make, message):
  path = tmp_path / 'bad.npy'
  make(path)
  result = _run_main(capsys, f'--workdir={tts_run}', f'--output={tmp_path}/out.wav',
                     f'--features={path}', '--speaker=low')
  assert result.returncode != 0
  assert len(result.stderr.strip().splitlines()) == 1, result.stderr
  assert 'generating' not in result.stdout
  flags.FLAGS.unparse_flags()
  assert re.search(message, result.last_error_line), result.last_error_line
