"""End to end: a tiny mixture-of-logistics vocoder with pre-emphasis trains (periodic clip
included), samples with sample.py and scores with evaluate.py, each applying the checkpoint's
codec and pre-emphasis without flags; the pre-emphasis is given under its old key,
config.data.preemphasis, on the command line."""
import json
import os

import numpy as np
import pytest
import soundfile

import training_runs
from wavenet_jax import audio as audio_lib
from wavenet_jax import checkpointing
from wavenet_jax import evaluation
from wavenet_jax.datasets import EMBEDDED_CORPUS_DIR

PREEMPHASIS = 0.9


@pytest.mark.slow
def test_mixture_vocoder_trains_samples_and_evaluates(tmp_path):
  workdir = str(tmp_path / 'run')
  overrides = {'model.output': 'mixture_of_logistics', 'model.num_mixtures': 3,
               'model.local_conditioning': True, 'data.preemphasis': PREEMPHASIS,
               'sample.every_steps': 4, 'eval.every_steps': 4}
  result = training_runs.run_train(workdir, overrides=overrides)
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'bits per μ-law class' in result.stderr
  assert ('config.data.preemphasis moved to config.model.preemphasis; using its value 0.9 '
          'there.') in result.stderr
  clip, _ = soundfile.read(os.path.join(workdir, 'samples', 'step_00000004.wav'))
  assert np.all(np.isfinite(clip)) and clip.size > 0

  trained = checkpointing.restore_for_inference(workdir)
  assert trained.model.output == 'mixture_of_logistics' and trained.model.num_classes == 65536
  assert trained.config.model.preemphasis == trained.model.preemphasis == PREEMPHASIS
  assert 'preemphasis' not in trained.config.data

  speaker_dir = EMBEDDED_CORPUS_DIR / sorted(os.listdir(EMBEDDED_CORPUS_DIR))[0]
  corpus_file = speaker_dir / sorted(name for name in os.listdir(speaker_dir)
                                     if name.endswith('.flac'))[0]
  folder = tmp_path / 'wavs'
  folder.mkdir()
  mel_source = folder / 'a.wav'
  soundfile.write(mel_source, audio_lib.load_audio(corpus_file, 16000)[:3000], 16000,
                  subtype='PCM_16')
  waveforms = {}
  for name, extra in (('one', []), ('folded', ['--segments=2']), ('streamed', ['--stream'])):
    output = tmp_path / f'{name}.wav'
    result = training_runs.run_script('sample.py', f'--workdir={workdir}', f'--output={output}',
                                      f'--mel_from={mel_source}', *extra)
    assert result.returncode == 0, result.stderr[-3000:]
    waveforms[name], rate = soundfile.read(output, dtype='float32')
    assert rate == 16000 and waveforms[name].shape == (3000,), name
    assert np.all(np.isfinite(waveforms[name])), name
  # Streaming de-emphasises with its filter state carried frame to frame: the same audio.
  np.testing.assert_array_equal(waveforms['streamed'], waveforms['one'])

  result = training_runs.run_script('evaluate.py', f'--workdir={workdir}',
                                    f'--wav_dir={folder}')
  assert result.returncode == 0, result.stderr[-3000:]
  score = json.loads(result.stdout.strip().splitlines()[-1])
  # The same file scored here, on the pre-emphasised 16-bit samples.
  nats, mulaw_nats = evaluation.score_waveform(
      trained.model, trained.variables, audio_lib.load_audio(folder / 'a.wav', 16000),
      trained.features)
  assert score['bits_per_sample'] == pytest.approx(evaluation.nats_to_bits(nats) / 2999,
                                                   rel=1e-5)
  assert score['mulaw_bits_per_sample'] == pytest.approx(
      evaluation.nats_to_bits(mulaw_nats) / 2999, rel=1e-5)
  assert score['mulaw_bits_per_sample'] < score['bits_per_sample']
