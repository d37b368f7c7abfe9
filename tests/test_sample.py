"""sample.py and wavenet_jax/synthesis.py: generation from tiny trained runs, in every mode.

Three runs are trained once for the module (unconditional, speaker-conditioned, vocoder).
sample.py's `main` runs in this process (its compiled sampler is shared between calls, which
keeps the file fast); two tests run the script as a subprocess, the way users call it.
"""
import dataclasses
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import types
import wave

from absl import flags
import jax
import numpy as np
import pytest
import soundfile

import training_runs
from wavenet_jax import audio as audio_lib
from wavenet_jax import checkpointing
from wavenet_jax import mulaw
from wavenet_jax import sampler
from wavenet_jax import distributions
from wavenet_jax import synthesis
from wavenet_jax import trainer
from wavenet_jax.datasets import EMBEDDED_CORPUS_DIR

SAMPLE_RATE = 16000
SECONDS = 0.05
NUM_SAMPLES = round(SECONDS * SAMPLE_RATE)  # The silent start sample + the generated ones.
SPEECH_SAMPLES = 900  # The --mel_from input: 3.5 mel frames of 256 samples.
LONG_SPEECH_SAMPLES = 2500  # A --mel_from input whose WAV (5,044 bytes) is over a page.
PROMPT_SAMPLES = 320

_spec = importlib.util.spec_from_file_location('sample', os.path.join(training_runs.REPO,
                                                                      'sample.py'))
sample = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sample)


@dataclasses.dataclass
class Result:
  returncode: int
  stdout: str
  stderr: str

  @property
  def last_error_line(self) -> str:
    return self.stderr.strip().splitlines()[-1]


def _run_main(capsys, *args: str) -> Result:
  """sample.py's main with these flags, in this process."""
  flags.FLAGS.unparse_flags()
  argv = flags.FLAGS(['sample.py', *args])
  try:
    sample.main(argv)
    returncode = 0
  except SystemExit as exit_:
    returncode = exit_.code
  captured = capsys.readouterr()
  return Result(returncode, captured.out, captured.err)


def _run_script(*args: str) -> Result:
  result = subprocess.run([sys.executable, 'sample.py', *args], cwd=training_runs.REPO,
                          env=training_runs.run_env(), capture_output=True, text=True,
                          timeout=300)
  return Result(result.returncode, result.stdout, result.stderr)


def _train(tmp_path_factory, name: str, overrides: dict | None = None) -> str:
  workdir = str(tmp_path_factory.mktemp(name))
  trainer.train_and_evaluate(
      training_runs.tiny_config({'train.num_steps': 1, 'checkpoint.every_steps': 1,
                                 'sample.every_steps': 0, **(overrides or {})}), workdir)
  return workdir


@pytest.fixture(scope='module')
def unconditional_run(tmp_path_factory):
  return _train(tmp_path_factory, 'unconditional')


@pytest.fixture(scope='module')
def speaker_run(tmp_path_factory):
  return _train(tmp_path_factory, 'speaker', {'model.global_conditioning': True})


@pytest.fixture(scope='module')
def vocoder_run(tmp_path_factory):
  return _train(tmp_path_factory, 'vocoder', {'model.local_conditioning': True})


@pytest.fixture(scope='module')
def inputs(tmp_path_factory):
  """Input files: speech clips (one long, one stereo), a prompt at the model's rate and at
  8 kHz, a text file."""
  folder = tmp_path_factory.mktemp('inputs')
  name = sorted(os.listdir(EMBEDDED_CORPUS_DIR / 'slt'))[0]
  speech = audio_lib.load_audio(EMBEDDED_CORPUS_DIR / 'slt' / name, SAMPLE_RATE)
  middle = len(speech) // 2
  audio_lib.write_wav(folder / 'speech.wav', speech[middle:middle + SPEECH_SAMPLES], SAMPLE_RATE)
  audio_lib.write_wav(folder / 'speech_long.wav', speech[middle:middle + LONG_SPEECH_SAMPLES],
                      SAMPLE_RATE)
  clip = speech[middle:middle + SPEECH_SAMPLES]
  soundfile.write(folder / 'speech_stereo.wav', np.stack([clip, -clip], axis=1), SAMPLE_RATE)
  prompt = speech[middle:middle + PROMPT_SAMPLES]
  audio_lib.write_wav(folder / 'prompt.wav', prompt, SAMPLE_RATE)
  audio_lib.write_wav(folder / 'prompt_8k.wav',
                      audio_lib.resample(prompt, SAMPLE_RATE, 8000), 8000)
  (folder / 'not_audio.wav').write_text('this is not a WAV file\n')
  return folder


def _read_wav(path) -> np.ndarray:
  """The float32 samples of a written WAV, after checking its rate and its PNG."""
  audio, rate = soundfile.read(path, dtype='float32')
  assert rate == SAMPLE_RATE
  assert np.all(np.isfinite(audio))
  assert os.path.getsize(os.path.splitext(path)[0] + '.png') > 0
  return audio


def _read_wav_only(path) -> np.ndarray:
  """The float32 samples of a written WAV whose header counts exactly the frames on disk."""
  audio, rate = soundfile.read(path, dtype='float32')
  assert rate == SAMPLE_RATE
  with wave.open(str(path)) as strict:
    assert strict.getnframes() == len(audio)
  assert os.path.getsize(path) == 44 + 2 * len(audio)
  return audio


def _real_time_factors(stdout: str) -> tuple[float, float | None]:
  """(end to end, steady state or None) from sample.py's real-time factor line."""
  match = re.search(r'real-time factor: end_to_end=(\S+) steady_state=(\S+)', stdout)
  assert match, stdout
  return float(match.group(1)), None if match.group(2) == 'n/a' else float(match.group(2))


def test_unconditional(unconditional_run, tmp_path, capsys):
  output = tmp_path / 'out.wav'
  result = _run_main(capsys, f'--workdir={unconditional_run}', f'--output={output}',
                     f'--seconds={SECONDS}')
  assert result.returncode == 0, result.stderr
  audio = _read_wav(output)
  assert audio.shape == (NUM_SAMPLES,)
  assert abs(audio[0]) < 1e-3  # The silent start sample (μ-law class 128).
  end_to_end, steady_state = _real_time_factors(result.stdout)
  assert end_to_end > 0 and steady_state is None  # One chunk.


def test_batch_writes_one_wav_per_clip(unconditional_run, tmp_path, capsys):
  result = _run_main(capsys, f'--workdir={unconditional_run}', f'--output={tmp_path}/out.wav',
                     f'--seconds={SECONDS}', '--batch_size=2')
  assert result.returncode == 0, result.stderr
  assert sorted(os.listdir(tmp_path)) == ['out_0.png', 'out_0.wav', 'out_1.png', 'out_1.wav']
  clips = [_read_wav(tmp_path / f'out_{i}.wav') for i in range(2)]
  assert all(clip.shape == (NUM_SAMPLES,) for clip in clips)
  assert not np.array_equal(clips[0], clips[1])  # Each clip draws its own noise.


def test_samples_do_not_depend_on_chunk_size(unconditional_run, tmp_path, capsys):
  clips = {}
  for chunk_size in (64, 1000):
    output = tmp_path / f'chunks_{chunk_size}.wav'
    result = _run_main(capsys, f'--workdir={unconditional_run}', f'--output={output}',
                       f'--seconds={SECONDS}', f'--chunk_size={chunk_size}', '--seed=3')
    assert result.returncode == 0, result.stderr
    clips[chunk_size] = _read_wav(output)
  np.testing.assert_array_equal(clips[64], clips[1000])
  _, steady_state = _real_time_factors(result.stdout)
  assert steady_state is None  # 1000 > the samples to generate: one chunk.


def test_steady_state_is_measured_over_several_chunks(unconditional_run, tmp_path, capsys):
  result = _run_main(capsys, f'--workdir={unconditional_run}', f'--output={tmp_path}/o.wav',
                     f'--seconds={SECONDS}', '--chunk_size=200')
  assert result.returncode == 0, result.stderr
  _, steady_state = _real_time_factors(result.stdout)
  assert steady_state is not None and steady_state > 0
  assert f'generated {NUM_SAMPLES - 1:,}/{NUM_SAMPLES - 1:,} samples' in result.stderr


def test_chunks_after_the_first_do_not_compile_again(unconditional_run):
  """A checkpoint's weights are committed to a device; the first chunk's cache must be too."""
  trained = checkpointing.restore_for_inference(unconditional_run)
  model, variables = trained.model, trained.variables
  compiled = sampler._generate_chunk._cache_size()  # pylint: disable=protected-access
  waveforms = synthesis.synthesize(model, variables, jax.random.key(0), num_samples=3 * 48,
                                   chunk_size=48)
  assert waveforms.shape == (1, 1 + 3 * 48)
  assert sampler._generate_chunk._cache_size() == compiled + 1  # pylint: disable=protected-access


def test_prompt_is_continued(unconditional_run, inputs, tmp_path, capsys):
  output = tmp_path / 'more.wav'
  result = _run_main(capsys, f'--workdir={unconditional_run}', f'--output={output}',
                     f'--seconds={SECONDS}', f'--prompt={inputs / "prompt.wav"}')
  assert result.returncode == 0, result.stderr
  audio = _read_wav(output)
  assert audio.shape == (PROMPT_SAMPLES + NUM_SAMPLES,)
  prompt = audio_lib.load_audio(inputs / 'prompt.wav', SAMPLE_RATE)
  np.testing.assert_allclose(audio[:PROMPT_SAMPLES], mulaw.decode(mulaw.encode(prompt)),
                             atol=1e-4)
  assert 'resampled' not in result.stdout


def test_prompt_at_another_rate_is_resampled_with_a_note(unconditional_run, inputs, tmp_path,
                                                          capsys):
  output = tmp_path / 'more.wav'
  result = _run_main(capsys, f'--workdir={unconditional_run}', f'--output={output}',
                     f'--seconds={SECONDS}', f'--prompt={inputs / "prompt_8k.wav"}')
  assert result.returncode == 0, result.stderr
  assert 'prompt_8k.wav is 8000 Hz; resampled to' in result.stdout
  assert _read_wav(output).shape == (PROMPT_SAMPLES + NUM_SAMPLES,)


def test_speaker_by_name_and_by_id(speaker_run, tmp_path, capsys):
  clips = {}
  for speaker in ('slt', '1', 'awb'):  # Speaker ids follow the sorted names: 0 awb, 1 slt.
    output = tmp_path / f'{speaker}.wav'
    result = _run_main(capsys, f'--workdir={speaker_run}', f'--output={output}',
                       f'--seconds={SECONDS}', f'--speaker={speaker}')
    assert result.returncode == 0, result.stderr
    clips[speaker] = _read_wav(output)
    assert clips[speaker].shape == (NUM_SAMPLES,)
  np.testing.assert_array_equal(clips['slt'], clips['1'])
  assert not np.array_equal(clips['slt'], clips['awb'])


def test_vocoder_output_is_as_long_as_its_input(vocoder_run, inputs, tmp_path, capsys):
  output = tmp_path / 'resynth.wav'
  result = _run_main(capsys, f'--workdir={vocoder_run}', f'--output={output}',
                     f'--mel_from={inputs / "speech.wav"}', '--batch_size=2')
  assert result.returncode == 0, result.stderr
  for i in range(2):
    assert _read_wav(tmp_path / f'resynth_{i}.wav').shape == (SPEECH_SAMPLES,)


def test_vocoder_folded_output_is_as_long_as_its_input(vocoder_run, inputs, tmp_path, capsys):
  output = tmp_path / 'folded.wav'
  result = _run_main(capsys, f'--workdir={vocoder_run}', f'--output={output}',
                     f'--mel_from={inputs / "speech.wav"}', '--segments=2', '--overlap_frames=1')
  assert result.returncode == 0, result.stderr
  assert 'generating 1 clip(s) folded into 2 segments each on 1 cpu device(s)' in result.stdout
  assert _read_wav(output).shape == (SPEECH_SAMPLES,)


def test_vocoder_with_a_prompt_falls_back_to_one_sequence(vocoder_run, inputs, tmp_path, capsys):
  # No overlap: the automatic fold would be a segment per frame.
  result = _run_main(capsys, f'--workdir={vocoder_run}', f'--output={tmp_path}/out.wav',
                     f'--mel_from={inputs / "speech.wav"}', f'--prompt={inputs / "prompt.wav"}',
                     '--overlap_frames=0')
  assert result.returncode == 0, result.stderr
  assert 'generating 1 clip(s) on' in result.stdout
  assert _read_wav(tmp_path / 'out.wav').shape == (SPEECH_SAMPLES,)


@pytest.mark.parametrize('overlap_frames, noted', [(100, True), (0, False)])
def test_an_overlap_back_to_the_start_of_every_segment_is_noted(vocoder_run, inputs, tmp_path,
                                                                capsys, overlap_frames, noted):
  result = _run_main(capsys, f'--workdir={vocoder_run}', f'--output={tmp_path}/out.wav',
                     f'--mel_from={inputs / "speech.wav"}', '--segments=2',
                     f'--overlap_frames={overlap_frames}')
  assert result.returncode == 0, result.stderr
  note = (f'note: --overlap_frames={overlap_frames} reaches back to frame 0 from every segment: '
          'each of the 2 segments generates the utterance from its start (2x the work of '
          '--segments=1).')
  assert (note in result.stdout) == noted, result.stdout


def test_stereo_input_is_noted_as_mixed_down(vocoder_run, inputs, tmp_path, capsys):
  result = _run_main(capsys, f'--workdir={vocoder_run}', f'--output={tmp_path}/out.wav',
                     f'--mel_from={inputs / "speech_stereo.wav"}')
  assert result.returncode == 0, result.stderr
  assert f'note: --mel_from={inputs / "speech_stereo.wav"} has 2 channels; mixed down to mono.' in (
      result.stdout)
  assert 'resampled' not in result.stdout


def test_clipped_samples_are_counted(unconditional_run, tmp_path, capsys, monkeypatch):
  """Audio beyond [-1, 1] (de-emphasis can overshoot) is clipped in the WAV, and said so."""
  synthesize, generated = synthesis.synthesize, []

  def loud(*args, on_chunk, **kwargs):
    generated.append(4 * synthesize(*args, on_chunk=lambda pieces: on_chunk(4 * pieces),
                                    **kwargs))
    return generated[-1]

  result = _run_main(capsys, f'--workdir={unconditional_run}', f'--output={tmp_path}/quiet.wav',
                     f'--seconds={SECONDS}')
  assert result.returncode == 0, result.stderr
  assert 'beyond [-1, 1]' not in result.stdout
  monkeypatch.setattr(synthesis, 'synthesize', loud)
  result = _run_main(capsys, f'--workdir={unconditional_run}', f'--output={tmp_path}/loud.wav',
                     f'--seconds={SECONDS}')
  assert result.returncode == 0, result.stderr
  beyond = np.count_nonzero(np.abs(generated[0]) > 1.0)
  assert beyond > 0
  assert (f'wrote {tmp_path}/loud.wav (0.05 s at 16000 Hz; {beyond:,} samples '
          f'({beyond / NUM_SAMPLES:.2%}) beyond [-1, 1] clipped) and its PNG') in result.stdout
  assert np.max(np.abs(_read_wav(tmp_path / 'loud.wav'))) <= 1.0


def test_a_second_writer_of_the_same_output_is_a_one_line_error(unconditional_run, tmp_path,
                                                                 capsys):
  """While one run writes OUT.partial.wav (locked), another with the same --output stops."""
  output = tmp_path / 'out.wav'
  output.write_bytes(b'the last complete output')
  with audio_lib.StreamedWav(output, SAMPLE_RATE) as first:
    first.append(np.zeros(100, np.float32))
    result = _run_main(capsys, f'--workdir={unconditional_run}', f'--output={output}',
                       f'--seconds={SECONDS}')
    assert result.returncode == 1
    assert 'Traceback' not in result.stderr + result.stdout
    assert result.last_error_line.endswith(
        f': error: --output={output}: another process is writing {output} (it holds '
        f'{tmp_path}/out.partial.wav); wait for it or choose another --output.')
    assert soundfile.info(first.partial).frames == 100  # The first writer's file is untouched.
    assert output.read_bytes() == b'the last complete output'
    first.finish()
  assert sorted(os.listdir(tmp_path)) == ['out.wav']
  assert soundfile.info(output).frames == 100


@pytest.fixture
def one_free_page(tmp_path):
  """A 64 KB tmpfs (root only) filled but for one 4 KB page."""
  mount_point = tmp_path / 'small_disk'
  mount_point.mkdir()
  mounted = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', str(mount_point)],
                           capture_output=True, text=True)
  if mounted.returncode:
    pytest.skip(f'cannot mount a small tmpfs here: {mounted.stderr.strip()}')
  (mount_point / 'filler').write_bytes(bytes(60 * 1024))
  yield mount_point
  subprocess.run(['umount', '--lazy', str(mount_point)], check=True)  # Even with files open.


@pytest.mark.parametrize('speech, lost', [
    ('speech_long.wav', 'writing {disk}/out.partial.wav failed (No space left on device); the '
     'audio generated is lost (no WAV is left).'),
    ('speech.wav', 'writing {disk}/out.png failed (No space left on device); {disk}/out.wav is '
     'complete but has no PNG.'),
])
def test_a_full_disk_leaves_no_corrupt_file_and_says_what_was_lost(
    vocoder_run, inputs, one_free_page, capsys, monkeypatch, speech, lost):
  """The disk fills after the free-space check: the folded WAV, or then its PNG, does not fit."""
  monkeypatch.setattr(shutil, 'disk_usage', lambda folder: types.SimpleNamespace(free=10**9))
  result = _run_main(capsys, f'--workdir={vocoder_run}', f'--output={one_free_page}/out.wav',
                     f'--mel_from={inputs / speech}', '--segments=2')
  assert result.returncode == 1
  assert 'Traceback' not in result.stderr + result.stdout
  assert result.last_error_line.endswith(
      f': error: --output={one_free_page}/out.wav: ' + lost.format(disk=one_free_page))
  written = sorted(os.listdir(one_free_page))
  if speech == 'speech.wav':
    assert written == ['filler', 'out.wav']
    assert _read_wav_only(one_free_page / 'out.wav').shape == (SPEECH_SAMPLES,)
  else:
    assert written == ['filler']


def test_streamed_vocoding_writes_what_one_sequence_writes(vocoder_run, inputs, tmp_path,
                                                             capsys):
  clips = {}
  for mode in ('--stream', '--segments=1'):
    output = tmp_path / f'{mode[2:8]}.wav'
    result = _run_main(capsys, f'--workdir={vocoder_run}', f'--output={output}',
                       f'--mel_from={inputs / "speech.wav"}', mode, '--seed=2')
    assert result.returncode == 0, result.stderr
    assert f'generated {SPEECH_SAMPLES - 1:,}/{SPEECH_SAMPLES - 1:,} samples' in result.stderr
    _real_time_factors(result.stdout)
    clips[mode] = _read_wav(output)
  assert clips['--stream'].shape == (SPEECH_SAMPLES,)
  np.testing.assert_array_equal(clips['--stream'], clips['--segments=1'])


@pytest.mark.slow
def test_script_uses_every_core_unless_told_otherwise(unconditional_run, tmp_path):
  """A device per core this process may run on; JAX_NUM_CPU_DEVICES, when set, wins."""
  cores = len(os.sched_getaffinity(0))
  for env, devices in (({}, cores), ({'JAX_NUM_CPU_DEVICES': '1'}, 1)):
    process_env = training_runs.run_env(**env)
    if not env:
      process_env.pop('JAX_NUM_CPU_DEVICES', None)
    result = subprocess.run(
        [sys.executable, 'sample.py', f'--workdir={unconditional_run}',
         f'--output={tmp_path}/out.wav', f'--seconds={SECONDS}', f'--batch_size={cores}'],
        cwd=training_runs.REPO, env=process_env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f'generating {cores} clip(s) on {devices} cpu device(s)' in result.stdout, (
        env, result.stdout)


@pytest.mark.parametrize('run, extra_flags, message', [
    ('unconditional_run', ['--speaker=slt'], '--speaker given, but this model is not '
     'speaker-conditioned'),
    ('speaker_run', [], '--speaker is needed: this model is speaker-conditioned; known speakers: '
     'awb, slt'),
    ('speaker_run', ['--speaker=nobody'], "--speaker='nobody' is unknown; known speakers (id: "
     'name): 0: awb, 1: slt'),
    ('speaker_run', ['--speaker=2'], "--speaker='2' is unknown"),
    ('unconditional_run', ['--mel_from={inputs}/speech.wav'], '--mel_from given, but this model '
     'has no local (mel) conditioning'),
    ('vocoder_run', [], '--mel_from is needed: this model is a vocoder (mel-conditioned)'),
    ('unconditional_run', ['--prompt={inputs}/not_audio.wav'], 'not_audio.wav: cannot decode '
     'audio'),
    ('unconditional_run', ['--seconds=0.00001'], 'nothing to generate'),
    ('unconditional_run', ['--step=7'], 'no checkpoint for step 7 (have [1])'),
    ('unconditional_run', ['--prompt={inputs}/prompt.wav', '--max_seconds=0.06'],
     'a clip would be 0.07 s long (prompt or --mel_from input included), over '
     '--max_seconds=0.06.'),
    ('vocoder_run', ['--mel_from={inputs}/speech.wav', '--max_seconds=0.05'],
     'a clip would be 0.06 s long'),
    ('vocoder_run', ['--mel_from={inputs}/speech.wav', '--segments=5'],
     '--segments must be in [1, 4] (at most one per mel frame of the 4-frame utterance), got 5.'),
])
def test_bad_input_is_a_one_line_error(request, inputs, tmp_path, capsys, run, extra_flags,
                                       message):
  workdir = request.getfixturevalue(run)
  result = _run_main(capsys, f'--workdir={workdir}', f'--output={tmp_path}/out.wav',
                     f'--seconds={SECONDS}', *[flag.format(inputs=inputs) for flag in extra_flags])
  assert result.returncode == 1
  assert 'Traceback' not in result.stderr + result.stdout
  assert message in result.last_error_line, result.stderr
  assert not os.path.exists(tmp_path / 'out.wav')


@pytest.mark.parametrize('extra_flags, message', [
    (['--batch_size=0'], '--batch_size must be >= 1, got 0.'),
    (['--chunk_size=0'], '--chunk_size must be >= 1, got 0.'),
    (['--segments=0'], '--segments must be >= 1, got 0.'),
    (['--overlap_frames=-1'], '--overlap_frames must be >= 0, got -1.'),
    (['--segments=2'], '--segments > 1 folds a vocoder\'s --mel_from input; it needs --mel_from'),
    (['--stream'], '--stream vocodes one --mel_from input as one sequence: it needs --mel_from'),
    (['--stream', '--mel_from={tmp}/clip_1.wav', '--batch_size=2'], '--stream vocodes one'),
    (['--seconds=nan'], '--seconds must be finite and > 0, got nan.'),
    (['--seconds=inf'], '--seconds must be finite and > 0, got inf.'),
    (['--seconds=0'], '--seconds must be finite and > 0, got 0.0.'),
    (['--seconds=-1'], '--seconds must be finite and > 0, got -1.0.'),
    (['--max_seconds=nan'], '--max_seconds must be finite and > 0, got nan.'),
    (['--seconds=1e9'], '--seconds=1000000000.0 is over --max_seconds=3600.0.'),
    (['--seconds=11', '--max_seconds=10'], '--seconds=11.0 is over --max_seconds=10.0.'),
    (['--temperature=-1'], '--temperature must be 0 (greedy) or finite and >= 0.001, got -1.0.'),
    (['--temperature=nan'], '--temperature must be 0 (greedy) or finite and >= 0.001, got nan.'),
    (['--temperature=inf'], '--temperature must be 0 (greedy) or finite and >= 0.001, got inf.'),
    (['--temperature=1e-40'], '--temperature must be 0 (greedy) or finite and >= 0.001, got '
     '1e-40.'),
    (['--mel_from={tmp}/missing.wav'], '--mel_from={tmp}/missing.wav: the file does not exist.'),
    (['--prompt={tmp}/missing.wav'], '--prompt={tmp}/missing.wav: the file does not exist.'),
    (['--prompt={tmp}'], '--prompt={tmp}: is a folder, not an audio file.'),
    (['--output={tmp}/out.mp3'], '--output={tmp}/out.mp3: must end in .wav'),
    (['--output={tmp}/out'], '--output={tmp}/out: must end in .wav'),
    (['--output=/dev/null/out.wav'], '--output=/dev/null/out.wav: cannot create its folder'),
    (['--output={tmp}/folder.wav'], '--output={tmp}/folder.wav: {tmp}/folder.wav is an existing '
     'folder.'),
    (['--output={tmp}/clip.wav', '--batch_size=2'], '--output={tmp}/clip.wav: {tmp}/clip_1.wav '
     'is an existing folder.'),
])
def test_bad_flags_fail_before_any_work(tmp_path, capsys, monkeypatch, extra_flags, message):
  """Each bad flag: one line, status 1, before the checkpoint is even looked for."""
  (tmp_path / 'folder.wav').mkdir()
  (tmp_path / 'clip_1.wav').mkdir()

  def no_restore(*args, **kwargs):
    raise AssertionError('restored a checkpoint despite a bad flag')

  monkeypatch.setattr(checkpointing, 'restore_for_inference', no_restore)
  began = time.perf_counter()
  result = _run_main(capsys, f'--workdir={tmp_path}/no_run', f'--output={tmp_path}/out.wav',
                     f'--seconds={SECONDS}', *[flag.format(tmp=tmp_path) for flag in extra_flags])
  assert time.perf_counter() - began < 5
  assert result.returncode == 1
  assert 'Traceback' not in result.stderr + result.stdout
  assert len(result.stderr.strip().splitlines()) == 1, result.stderr
  assert f': error: {message.format(tmp=tmp_path)}' in result.last_error_line
  assert sorted(os.listdir(tmp_path)) == ['clip_1.wav', 'folder.wav']


def test_too_little_disk_space_is_an_error_before_generating(unconditional_run, tmp_path, capsys,
                                                             monkeypatch):
  monkeypatch.setattr(shutil, 'disk_usage', lambda folder: types.SimpleNamespace(free=1000))
  result = _run_main(capsys, f'--workdir={unconditional_run}', f'--output={tmp_path}/out.wav',
                     f'--seconds={SECONDS}', '--batch_size=2')
  assert result.returncode == 1
  assert result.last_error_line.endswith(f': error: --output={tmp_path}/out.wav: the WAVs need '
                                         f'3,288 bytes but {tmp_path} has 1,000 bytes free.')
  assert 'generated' not in result.stderr
  assert os.listdir(tmp_path) == []


def test_lowest_temperature_samples(unconditional_run, tmp_path, capsys):
  """At the floor the samples are valid audio (not the constant -1 of a NaN distribution)."""
  output = tmp_path / 'cold.wav'
  result = _run_main(capsys, f'--workdir={unconditional_run}', f'--output={output}',
                     f'--seconds={SECONDS}', f'--temperature={distributions.MIN_TEMPERATURE}')
  assert result.returncode == 0, result.stderr
  audio = _read_wav(output)
  assert audio.shape == (NUM_SAMPLES,) and not np.all(audio[1:] == -1.0)


def test_uppercase_suffix_and_batch_names(unconditional_run, tmp_path, capsys):
  result = _run_main(capsys, f'--workdir={unconditional_run}', f'--output={tmp_path}/Clip.WAV',
                     f'--seconds={SECONDS}', '--batch_size=2')
  assert result.returncode == 0, result.stderr
  assert sorted(os.listdir(tmp_path)) == ['Clip_0.WAV', 'Clip_0.png', 'Clip_1.WAV', 'Clip_1.png']


def test_chunks_handed_over_make_up_the_waveform(unconditional_run):
  trained = checkpointing.restore_for_inference(unconditional_run)
  pieces = []
  prompt = np.full((2, 5), 100, np.int32)
  waveforms = synthesis.synthesize(trained.model, trained.variables, jax.random.key(0),
                                   num_samples=2 * 48 + 10, batch_size=2, prompt=prompt,
                                   chunk_size=48, on_chunk=pieces.append)
  assert [piece.shape for piece in pieces] == [(2, 5 + 48), (2, 48), (2, 10)]
  assert all(piece.dtype == np.float32 for piece in pieces)
  np.testing.assert_array_equal(np.concatenate(pieces, axis=1), waveforms)
  np.testing.assert_array_equal(waveforms[:, :5], mulaw.decode(prompt))


@pytest.mark.slow
def test_a_killed_run_leaves_a_valid_wav_of_the_chunks_done(unconditional_run, tmp_path, capsys):
  """The WAV is written chunk by chunk into OUT.partial.wav: SIGKILL mid-generation leaves the
  chunks done there, playable; meanwhile a second run with the same --output stops at once."""
  output = tmp_path / 'long.wav'
  partial = tmp_path / 'long.partial.wav'
  chunk_size = 1000
  process = subprocess.Popen(
      [sys.executable, 'sample.py', f'--workdir={unconditional_run}', f'--output={output}',
       '--seconds=600', f'--chunk_size={chunk_size}', '--seed=4'],
      cwd=training_runs.REPO, env=training_runs.run_env(), stdout=subprocess.DEVNULL,
      stderr=subprocess.DEVNULL)
  try:
    deadline = time.monotonic() + 240
    while not (partial.exists() and soundfile.info(partial).frames > 1 + 2 * chunk_size):
      assert process.poll() is None and time.monotonic() < deadline
      time.sleep(0.1)
    second = _run_main(capsys, f'--workdir={unconditional_run}', f'--output={output}',
                       f'--seconds={SECONDS}')
    assert second.returncode == 1
    assert f'another process is writing {output}' in second.last_error_line
  finally:
    process.kill()
    process.wait()
  assert process.returncode == -signal.SIGKILL
  audio = _read_wav_only(partial)
  assert len(audio) > 1 + 2 * chunk_size and (len(audio) - 1) % chunk_size == 0
  assert sorted(os.listdir(tmp_path)) == ['long.partial.wav']  # The WAV and PNG come at the end.
  trained = checkpointing.restore_for_inference(unconditional_run)
  expected = synthesis.synthesize(trained.model, trained.variables, jax.random.key(4),
                                  num_samples=len(audio) - 1, chunk_size=chunk_size)[0]
  audio_lib.write_wav(tmp_path / 'expected.wav', expected, SAMPLE_RATE)
  np.testing.assert_array_equal(audio, soundfile.read(tmp_path / 'expected.wav',
                                                      dtype='float32')[0])


@pytest.mark.slow
def test_script_generates_and_its_errors_are_one_line(speaker_run, tmp_path):
  """The script as users run it: a speaker-conditioned batch, then a workdir without checkpoint."""
  result = _run_script(f'--workdir={speaker_run}', f'--output={tmp_path}/out.wav',
                       f'--seconds={SECONDS}', '--speaker=awb', '--batch_size=2')
  assert result.returncode == 0, result.stderr[-3000:]
  assert [_read_wav(tmp_path / f'out_{i}.wav').shape for i in range(2)] == [(NUM_SAMPLES,)] * 2
  _real_time_factors(result.stdout)
  assert len(result.stderr.splitlines()) < 8, 'library INFO logs bury the output'

  empty = tmp_path / 'empty'
  empty.mkdir()
  result = _run_script(f'--workdir={empty}', f'--output={tmp_path}/none.wav')
  assert result.returncode == 1
  assert 'Traceback' not in result.stderr + result.stdout
  assert re.fullmatch(r'sample\.py: error: .*empty: no checkpoint .*', result.last_error_line)
  assert not os.path.exists(tmp_path / 'none.wav')
