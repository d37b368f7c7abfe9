r"""Generates audio from a trained WaveNet.

  python sample.py --workdir=runs/tiny --output=out.wav --seconds=2
  python sample.py --workdir=runs/multispeaker --output=slt.wav --speaker=slt
  python sample.py --workdir=runs/vocoder --output=resynth.wav --mel_from=in.wav
  python sample.py --workdir=runs/tiny --output=more.wav --prompt=in.wav --seconds=1

Restores the latest (or --step) checkpoint with the config and dataset info saved
with it (EMA weights when the run kept them). Writes OUT.wav (or OUT_0.wav,
OUT_1.wav, ... for --batch_size > 1) at the model's sample rate and a PNG of the
waveform and log-mel spectrogram beside each. A WAV holds the whole sequence: the
prompt (or one silent start sample) and the generated samples; with --mel_from it
is as long as the input. The batch is split over the most local devices that divide
it (several GPUs; on a CPU host JAX_NUM_CPU_DEVICES=2 makes a device per core of a
2-core machine: for --batch_size=16, 1.4-1.6x the samples/s of one device there).
"""
import os
import sys
import time

from absl import flags
from etils import epath
import jax
import numpy as np
import soundfile

from wavenet_jax import audio as audio_lib
from wavenet_jax import checkpointing
from wavenet_jax import cli
from wavenet_jax import mulaw
from wavenet_jax import plotting
from wavenet_jax import sampler
from wavenet_jax import synthesis

_WORKDIR = flags.DEFINE_string('workdir', None, 'Training run directory.', required=True)
_OUTPUT = flags.DEFINE_string('output', None, 'WAV file to write.', required=True)
_SECONDS = flags.DEFINE_float('seconds', 2.0, 'Seconds to generate (after the prompt); with '
                               '--mel_from the output is as long as the input instead.')
_BATCH_SIZE = flags.DEFINE_integer('batch_size', 1, 'Clips generated together.')
_TEMPERATURE = flags.DEFINE_float('temperature', 1.0, 'Softmax temperature; 0 is greedy.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of the sampling noise.')
_STEP = flags.DEFINE_integer('step', None, 'Checkpoint step; default the latest.')
_SPEAKER = flags.DEFINE_string('speaker', None, 'Speaker name or id (speaker-conditioned models).')
_MEL_FROM = flags.DEFINE_string('mel_from', None, 'Vocoder mode: resynthesise this audio file '
                                'from its log-mel spectrogram.')
_PROMPT = flags.DEFINE_string('prompt', None, 'Audio file whose continuation is generated.')
_CHUNK_SIZE = flags.DEFINE_integer('chunk_size', 8000, 'Samples generated per compiled chunk.')


def _read_audio(flag: str, path: str, sample_rate: int) -> np.ndarray:
  """float32 [time] at sample_rate; notes a resampling."""
  audio = audio_lib.load_audio(path, sample_rate)  # Raises AudioFileError naming the file.
  file_rate = soundfile.info(path).samplerate
  if file_rate != sample_rate:
    print(f'note: --{flag}={path} is {file_rate} Hz; resampled to the model\'s {sample_rate} Hz.')
  return audio


def _print_progress(progress: synthesis.Progress) -> None:
  rate = progress.done / max(progress.seconds, 1e-9)
  eta = (progress.total - progress.done) / max(rate, 1e-9)
  print(f'\rgenerated {progress.done:,}/{progress.total:,} samples | {rate:,.0f} samples/s | '
        f'ETA {eta:.1f} s ', end='', file=sys.stderr, flush=True)


def _output_paths(output: str, batch_size: int) -> list[str]:
  if batch_size == 1:
    return [output]
  stem, extension = os.path.splitext(output)
  return [f'{stem}_{i}{extension or ".wav"}' for i in range(batch_size)]


def _check_flags() -> None:
  """Raises ValueError naming the first flag with a value out of range."""
  for flag, value, lowest in (('batch_size', _BATCH_SIZE.value, 1),
                              ('chunk_size', _CHUNK_SIZE.value, 1),
                              ('temperature', _TEMPERATURE.value, 0)):
    if value < lowest:
      raise ValueError(f'--{flag} must be >= {lowest}, got {value}.')


def _make_output_folder() -> None:
  """Creates --output's folder (before generating: a bad path fails at once)."""
  try:
    epath.Path(_OUTPUT.value).parent.mkdir(parents=True, exist_ok=True)
  except OSError as error:
    raise ValueError(f'--output={_OUTPUT.value}: cannot create its folder ({error}).') from error


@cli.exit_on_error(checkpointing.NoCheckpointError, audio_lib.AudioFileError, ValueError)
def main(argv):
  del argv  # cli.run checks that there are no positional arguments.
  began = time.perf_counter()
  _check_flags()
  trained = checkpointing.restore_for_inference(_WORKDIR.value, _STEP.value)
  config, info, model, variables = (trained.config, trained.dataset_info, trained.model,
                                    trained.variables)
  sample_rate = info.sample_rate
  batch_size = _BATCH_SIZE.value

  global_cond = None
  if model.num_speakers > 0:
    if _SPEAKER.value is None:
      raise ValueError('this model is speaker-conditioned: pass --speaker; known speakers: '
                       + ', '.join(info.speakers))
    global_cond = np.full([batch_size], synthesis.speaker_id(_SPEAKER.value, info.speakers))
  elif _SPEAKER.value is not None:
    raise ValueError('--speaker given, but this model is not speaker-conditioned.')

  local_cond = None
  if model.local_cond_channels > 0:
    if _MEL_FROM.value is None:
      raise ValueError('this model is a vocoder (mel-conditioned): pass --mel_from=IN.wav.')
    source = _read_audio('mel_from', _MEL_FROM.value, sample_rate)
    features = audio_lib.vocoder_features(source, sample_rate, config.data.mel, info.mel_mean,
                                          info.mel_std)
    local_cond = np.repeat(features[None], batch_size, axis=0)
  elif _MEL_FROM.value is not None:
    raise ValueError('--mel_from given, but this model has no local (mel) conditioning.')

  prompt = None
  if _PROMPT.value is not None:
    prompt_audio = _read_audio('prompt', _PROMPT.value, sample_rate)
    prompt = np.repeat(mulaw.encode(prompt_audio)[None], batch_size, axis=0)
  start = 1 if prompt is None else prompt.shape[1]
  if local_cond is not None:
    num_samples = len(source) - start  # Output as long as the input.
  else:
    num_samples = round(_SECONDS.value * sample_rate) - (1 if prompt is None else 0)
  if num_samples < 1:
    raise ValueError('nothing to generate: --seconds (or the --mel_from input) is too short.')

  _make_output_folder()
  load_seconds = time.perf_counter() - began
  progress = []

  def on_progress(report: synthesis.Progress) -> None:
    progress.append(report)
    _print_progress(report)

  waveforms = synthesis.synthesize(
      model, variables, jax.random.key(_SEED.value), num_samples=num_samples,
      batch_size=batch_size, temperature=_TEMPERATURE.value, prompt=prompt,
      global_cond=global_cond, local_cond=local_cond, chunk_size=_CHUNK_SIZE.value,
      on_progress=on_progress, mesh=sampler.batch_mesh(batch_size))
  print(file=sys.stderr)
  generate_seconds = progress[-1].seconds
  total_seconds = time.perf_counter() - began

  for path, waveform in zip(_output_paths(_OUTPUT.value, batch_size), waveforms):
    audio_lib.write_wav(path, waveform, sample_rate)
    plotting.save_waveform_and_spectrogram(os.path.splitext(path)[0] + '.png', waveform,
                                           sample_rate, config.data.mel, title=path)
    print(f'wrote {path} ({len(waveform) / sample_rate:.2f} s at {sample_rate} Hz) and its PNG')

  audio_seconds = num_samples / sample_rate
  steady = _steady_state_rate(progress)
  steady_text = (f'= the chunks after the first, {steady * batch_size:,.0f} samples/s over the '
                 'batch)' if steady else 'needs several chunks: lower --chunk_size)')
  print(f'real-time factor: end_to_end={total_seconds / audio_seconds:.3f} steady_state='
        + (f'{sample_rate / steady:.3f}' if steady else 'n/a')
        + ' (wall seconds per second of generated audio per clip; end to end = setup '
        f'(checkpoint, inputs) {load_seconds:.1f} s + generation incl. compile '
        f'{generate_seconds:.1f} s; steady state {steady_text}')


def _steady_state_rate(progress: list[synthesis.Progress]) -> float | None:
  """Samples/s per clip after the first chunk (which includes compilation), or None."""
  if len(progress) < 2:
    return None
  first, last = progress[0], progress[-1]
  return (last.done - first.done) / max(last.seconds - first.seconds, 1e-9)


if __name__ == '__main__':
  cli.run(main)
