"""experiments/tools/degrade_mels.py (GTA in miniature) and what reads its frames back:
LogMel.read_from_files and report.py --wav_dir --mel_from_files."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import training_runs
from experiments.tools import mel_degradation
from wavenet_jax import audio as audio_lib
from wavenet_jax import checkpointing
from wavenet_jax import trainer
from wavenet_jax.datasets import EMBEDDED_CORPUS_DIR
from wavenet_jax.features import LogMel


def test_degrade_is_a_centred_moving_average_of_the_frames_plus_noise():
  rng = np.random.default_rng(0)
  frames = rng.standard_normal((40, 3)).astype(np.float32)
  np.testing.assert_array_equal(mel_degradation.degrade(frames, 1, 0.0, rng), frames)
  smoothed = mel_degradation.degrade(frames, 5, 0.0, rng)
  assert smoothed.shape == frames.shape and smoothed.dtype == np.float32
  np.testing.assert_allclose(smoothed[2:-2], np.mean([frames[i:36 + i] for i in range(5)], 0),
                             rtol=1e-5, atol=1e-6)
  # The ends repeat their frame: frame 0 averages frames 0, 0, 0, 1, 2.
  np.testing.assert_allclose(smoothed[0], (3 * frames[0] + frames[1] + frames[2]) / 5, rtol=1e-5)
  ramp = np.repeat(np.arange(40, dtype=np.float32)[:, None], 3, axis=1)
  np.testing.assert_allclose(mel_degradation.degrade(ramp, 5, 0.0, rng)[2:-2], ramp[2:-2])
  noise = mel_degradation.degrade(np.zeros((20_000, 4), np.float32), 3, 0.2, rng)
  assert np.std(noise) == pytest.approx(0.2, rel=0.02)  # Added after the smoothing.
  assert abs(np.mean(noise)) < 0.01


def test_a_files_noise_depends_on_the_seed_and_its_path_only():
  draw = lambda seed, path: mel_degradation.file_rng(seed, path).standard_normal(4)
  np.testing.assert_array_equal(draw(0, 'wav/a.wav'), draw(0, 'wav/a.wav'))
  assert not np.allclose(draw(0, 'wav/a.wav'), draw(0, 'wav/b.wav'))
  assert not np.allclose(draw(0, 'wav/a.wav'), draw(1, 'wav/a.wav'))


def test_log_mel_read_from_files_is_the_mel_computed_from_the_audio(tmp_path):
  features = LogMel(sample_rate=16000, n_mels=8, hop_length=64, n_fft=256, fmin=0.0,
                    fmax=8000.0, mean=np.linspace(-5, -1, 8, dtype=np.float32),
                    std=np.linspace(1, 2, 8, dtype=np.float32))
  waveform = 0.1 * np.random.default_rng(0).standard_normal(1000).astype(np.float32)
  np.save(tmp_path / 'a.npy', audio_lib.log_mel(waveform, 16000, features))
  from_files = features.read_from_files()
  assert from_files.hop_length == 64 and from_files.channels == 8
  np.testing.assert_allclose(from_files.of_file(tmp_path / 'a.wav', waveform),
                             features(waveform), rtol=1e-5, atol=1e-5)


def _run_module(module, *flags):
  return subprocess.run([sys.executable, '-m', module, *flags], cwd=training_runs.REPO,
                        env=training_runs.run_env(), capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_degraded_mels_are_the_vocoders_log_mel_and_report_reads_them(tmp_path):
  workdir = str(tmp_path / 'run')
  trainer.train_and_evaluate(training_runs.tiny_config(
      {'train.num_steps': 2, 'model.local_conditioning': True}), workdir)
  features = checkpointing.restore_for_inference(workdir).features
  wavs, mirror = tmp_path / 'wavs', tmp_path / 'mirror'
  (wavs / 'slt').mkdir(parents=True)
  for name in sorted(os.listdir(EMBEDDED_CORPUS_DIR / 'slt'))[:2]:
    shutil.copy(EMBEDDED_CORPUS_DIR / 'slt' / name, wavs / 'slt' / name)

  result = _run_module('experiments.tools.degrade_mels', f'--workdir={workdir}',
                       f'--wav_dir={wavs}', f'--out_dir={mirror}', '--smooth_frames=1',
                       '--noise_std=0')
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.startswith('2 files of 8-band log-mel frames')
  for name in os.listdir(wavs / 'slt'):
    waveform = audio_lib.load_audio(wavs / 'slt' / name, features.sample_rate)
    np.testing.assert_allclose(np.load((mirror / 'slt' / name).with_suffix('.npy')),
                               audio_lib.log_mel(waveform, features.sample_rate, features),
                               rtol=1e-6)
    shutil.copy((mirror / 'slt' / name).with_suffix('.npy'),
                (wavs / 'slt' / name).with_suffix('.npy'))

  # The true mels read from files score as the mels computed from the audio.
  scores = []
  for extra in ([], ['--mel_from_files']):
    result = _run_module('experiments.tools.report', f'--workdir={workdir}',
                         f'--output_dir={tmp_path / "report"}', f'--wav_dir={wavs}',
                         '--num_utterances=1', '--griffin_lim_iters=2', *extra)
    assert result.returncode == 0, result.stderr[-3000:]
    scores.append(json.loads(result.stdout.strip().splitlines()[-1]))
  assert scores[0]['validation_files'] == scores[1]['validation_files'] == 2
  assert scores[1]['validation_bits_per_sample'] == pytest.approx(
      scores[0]['validation_bits_per_sample'], rel=1e-5)

  result = _run_module('experiments.tools.degrade_mels', f'--workdir={workdir}',
                       f'--wav_dir={wavs}', f'--out_dir={mirror}', '--smooth_frames=4')
  assert result.returncode != 0 and 'Traceback' not in result.stderr
  assert result.stderr.strip().splitlines()[-1].endswith(
      '--smooth_frames=4: must be odd and >= 1 (a centred window).')
