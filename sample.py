r"""Generates audio from a trained WaveNet.

  python sample.py --workdir=runs/tiny --output=out.wav --seconds=2
  python sample.py --workdir=runs/multispeaker --output=slt.wav --speaker=slt
  python sample.py --workdir=runs/vocoder --output=resynth.wav --mel_from=in.wav
  python sample.py --workdir=runs/vocoder --output=resynth.wav --mel_from=in.wav --stream
  python sample.py --workdir=runs/tiny --output=more.wav --prompt=in.wav --seconds=1
  python sample.py --workdir=runs/tts_cpu --output=tts.wav --features=utt.npy --speaker=slt_hts
  python sample.py --workdir=runs/vocoder --output=tts.wav --features=mel.npy \
      --features_convention=log10:fmin=80,fmax=7600 --features_stats=stats.npy

Restores the latest (or --step) checkpoint with the config and dataset info saved
with it (EMA weights when the run kept them). Writes OUT.wav (or OUT_0.wav,
OUT_1.wav, ... for --batch_size > 1; --output must end in .wav) at the model's sample
rate, chunk by chunk as it is generated into OUT.partial.wav (a killed run leaves it, a
playable WAV of the chunks done), renamed to OUT.wav when complete (a gs:// output is written
at the end), then a PNG of the waveform and log-mel spectrogram beside each. A second run
writing the same --output while one is at it is an error; a failed write (a full disk) leaves
no file behind and says what was lost. A WAV holds the whole sequence: the prompt (or one silent
start sample) and the generated samples; with --mel_from it is as long as the input, with
--features (float32 [frames, channels] .npy frames, as the model was trained on: see
docs/tts.md) as long as the frames describe (frames x hop samples); --features_convention
converts another model's mels to a mel vocoder's own (features/conventions.py).
A clip is at most --max_seconds long (default an hour). The flags, the inputs, the
output path and the disk space for the WAVs are checked before generating. The batch
is split over the most local devices that divide it: several GPUs, or on a CPU host one
device per core this process may run on (set JAX_NUM_CPU_DEVICES, or XLA_FLAGS'
--xla_force_host_platform_device_count, to choose another count).

A vocoder (--mel_from or --features) folds each utterance into --segments segments generated
as one batch (see wavenet_jax/synthesis.py; by default as many as keep the devices busy, see
`synthesis.default_segments`); its WAV is then written once they are joined. --stream
instead feeds the mel frames one at a time to `synthesis.stream` and appends each frame's
audio to the WAV as it comes.
"""
import contextlib
import math
import os
import shutil
import sys
import time
from typing import Any, Callable, Iterator, Optional

from absl import flags
from etils import epath
import jax
import numpy as np
import soundfile

from wavenet_jax import audio as audio_lib
from wavenet_jax import checkpointing
from wavenet_jax import cli
from wavenet_jax import distributions
from wavenet_jax import features as features_lib
from wavenet_jax import storage
from wavenet_jax import plotting
from wavenet_jax import sampler
from wavenet_jax import synthesis
from wavenet_jax.features import conventions
from wavenet_jax.models import WaveNet

# --stream: frames between progress reports.
PROGRESS_FRAMES = 32

_WORKDIR = flags.DEFINE_string('workdir', None, 'Training run directory.', required=True)
_OUTPUT = flags.DEFINE_string(
    'output', None, 'WAV file to write, ending in .wav (STEM.wav -> STEM_0.wav, STEM_1.wav, ... '
    'for --batch_size > 1). A local file is written chunk by chunk as it is generated, into '
    'STEM.partial.wav (a killed run leaves a valid WAV of the chunks done there), renamed to '
    'the output when complete; a URL (gs://...) is written at the end.',
    required=True)
_SECONDS = flags.DEFINE_float('seconds', 2.0, 'Seconds to generate (after the prompt), > 0; with '
                               '--mel_from the output is as long as the input instead.')
_MAX_SECONDS = flags.DEFINE_float('max_seconds', 3600.0, 'Longest clip accepted, in seconds of '
                                  'audio (the prompt included); a longer one is an error.')
_BATCH_SIZE = flags.DEFINE_integer('batch_size', 1, 'Clips generated together.')
_TEMPERATURE = flags.DEFINE_float(
    'temperature', 1.0, f'Softmax temperature: 0 is greedy, else >= '
    f'{distributions.MIN_TEMPERATURE} (lower ones are greedy in effect; subnormal ones give '
    'garbage).')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of the sampling noise.')
_STEP = flags.DEFINE_integer('step', None, 'Checkpoint step; default the latest.')
_SPEAKER = flags.DEFINE_string('speaker', None, 'Speaker name or id (speaker-conditioned models).')
_MEL_FROM = flags.DEFINE_string('mel_from', None, 'Vocoder mode: resynthesise this audio file '
                                'from its log-mel spectrogram.')
_FEATURES = flags.DEFINE_string(
    'features', None, 'Generate the audio these frames describe: a .npy float32 [frames, '
    'channels] array of the features the model is conditioned on (as stored for training; for '
    'a mel vocoder, log-mel frames of its convention), frame k covering samples [k * hop, '
    '(k + 1) * hop); folded or streamed as --mel_from.')
_FEATURES_CONVENTION = flags.DEFINE_string(
    'features_convention', None, "A mel vocoder's --features in another model's convention, "
    "converted to its own: NAME[:key=value,...], NAME one of "
    f"{', '.join(conventions.CONVENTIONS)}, then the analysis settings the mels were made with "
    "where they may differ (e.g. 'log10:sample_rate=22050,hop_length=256'; unstated ones are "
    'taken to be the vocoder\'s; a differing one is an error). See '
    '`python -m wavenet_jax.features.describe` and features/conventions.py.')
_FEATURES_STATS = flags.DEFINE_string(
    'features_stats', None, "--features_convention: the other model's normalisation of its "
    'mels, undone first: a .npz or .h5 of mean and std (or scale) [n_mels] arrays, or a .npy '
    '[2, n_mels] array of mean then std (ParallelWaveGAN\'s stats.h5 or stats.npy).')
_PROMPT = flags.DEFINE_string('prompt', None, 'Audio file whose continuation is generated.')
_KERNEL = flags.DEFINE_enum(
    'kernel', 'xla', sampler.KERNELS, "How samples are generated: 'xla' (a scan over the "
    "model's one-sample step) or 'pallas' (one persistent kernel per chunk, on one device; on "
    'a GPU widths multiples of 64; its speed is not measured yet).')
_CHUNK_SIZE = flags.DEFINE_integer('chunk_size', 8000, 'Samples generated per compiled chunk.')
_SEGMENTS = flags.DEFINE_integer(
    'segments', None, 'Vocoder (--mel_from): segments each utterance is folded into and '
    'generated as one batch; 1 generates it as one sequence; default as many as keep the '
    'devices busy.')
_OVERLAP_FRAMES = flags.DEFINE_integer(
    'overlap_frames', synthesis.DEFAULT_OVERLAP_FRAMES, 'Folded generation: mel frames of '
    'warm-up before each segment (generated, then discarded).')
_STREAM = flags.DEFINE_bool('stream', False, 'Vocoder: feed the --mel_from frames one at a time '
                            'and write each frame\'s audio as it comes (one clip, one sequence).')


def _read_audio(flag: str, path: str, sample_rate: int) -> np.ndarray:
  """float32 [time] at sample_rate; notes a mix down to mono and a resampling."""
  audio = audio_lib.load_audio(path, sample_rate)  # Raises AudioFileError naming the file.
  info = soundfile.info(path)
  if info.channels > 1:
    print(f'note: --{flag}={path} has {info.channels} channels; mixed down to mono.')
  if info.samplerate != sample_rate:
    print(f'note: --{flag}={path} is {info.samplerate} Hz; resampled to the model\'s '
          f'{sample_rate} Hz.')
  return audio


def _print_progress(progress: synthesis.Progress) -> None:
  rate = progress.done / max(progress.seconds, 1e-9)
  eta = (progress.total - progress.done) / max(rate, 1e-9)
  print(f'\rgenerated {progress.done:,}/{progress.total:,} samples | {rate:,.0f} samples/s | '
        f'ETA {eta:.1f} s ', end='', file=sys.stderr, flush=True)


def _output_paths(output: str, batch_size: int) -> list[str]:
  """[output], or STEM_0.wav, STEM_1.wav, ... for a batch (output ends in .wav)."""
  if batch_size == 1:
    return [output]
  stem, suffix = output[:-len('.wav')], output[-len('.wav'):]
  return [f'{stem}_{i}{suffix}' for i in range(batch_size)]


def _check_flags() -> None:
  """Raises ValueError naming the first flag with a value out of range."""
  for flag, value, lowest in (('batch_size', _BATCH_SIZE.value, 1),
                              ('chunk_size', _CHUNK_SIZE.value, 1),
                              ('segments', _SEGMENTS.value, 1),
                              ('overlap_frames', _OVERLAP_FRAMES.value, 0)):
    if value is not None and value < lowest:
      raise ValueError(f'--{flag} must be >= {lowest}, got {value}.')
  folded = _SEGMENTS.value is not None and _SEGMENTS.value > 1
  if _MEL_FROM.value is not None and _FEATURES.value is not None:
    raise ValueError('--mel_from and --features both given: the local conditioning takes one.')
  local = _MEL_FROM.value is not None or _FEATURES.value is not None
  if folded and (not local or _PROMPT.value is not None):
    raise ValueError('--segments > 1 folds a vocoder\'s --mel_from input; it needs --mel_from '
                     '(or --features) and no --prompt.')
  if _STREAM.value and (not local or _PROMPT.value is not None or folded
                        or _BATCH_SIZE.value != 1):
    raise ValueError('--stream vocodes one --mel_from input as one sequence: it needs '
                     '--mel_from (or --features), and no --prompt, --segments > 1 or '
                     '--batch_size > 1.')
  for flag, value in (('seconds', _SECONDS.value), ('max_seconds', _MAX_SECONDS.value)):
    if not (math.isfinite(value) and value > 0):
      raise ValueError(f'--{flag} must be finite and > 0, got {value}.')
  if not local and _SECONDS.value > _MAX_SECONDS.value:
    raise ValueError(f'--seconds={_SECONDS.value} is over --max_seconds={_MAX_SECONDS.value}.')
  try:
    distributions.check_temperature(_TEMPERATURE.value)
  except ValueError as error:
    raise ValueError(f'--{error}') from None
  if ((_FEATURES_CONVENTION.value is not None or _FEATURES_STATS.value is not None)
      and _FEATURES.value is None):
    raise ValueError('--features_convention and --features_stats convert --features frames: '
                     'they need --features.')
  if _FEATURES_STATS.value is not None and _FEATURES_CONVENTION.value is None:
    raise ValueError('--features_stats needs --features_convention (the statistics\' '
                     'convention).')
  for flag, path in (('mel_from', _MEL_FROM.value), ('prompt', _PROMPT.value),
                     ('features', _FEATURES.value), ('features_stats', _FEATURES_STATS.value)):
    if path is not None and not os.path.isfile(path):
      kind = 'a .npy file' if flag.startswith('features') else 'an audio file'
      raise ValueError(f'--{flag}={path}: ' + (f'is a folder, not {kind}.'
                                               if os.path.isdir(path) else
                                               'the file does not exist.'))


def _read_features(path: str) -> np.ndarray:
  """--features' float32 [frames, channels] array; ValueError naming the file, for one that
  does not load, is not 2-D, holds no frame or NaN/inf values (channels: the model's check)."""
  try:
    frames = np.load(path, allow_pickle=False)
  except (OSError, ValueError) as error:
    raise ValueError(f'--features={path}: not a .npy array ({error}).') from None
  if frames.ndim != 2 or not len(frames) or not frames.shape[1]:
    raise ValueError(f'--features={path}: an array of shape {frames.shape}; a [frames, '
                     'channels] array with frames > 0 is needed.')
  if not np.issubdtype(frames.dtype, np.number) or not np.all(np.isfinite(frames)):
    raise ValueError(f'--features={path}: holds NaN, infinite or non-numeric values.')
  return frames.astype(np.float32)


def _features_convention() -> Optional[conventions.MelConvention]:
  """--features_convention (with --features_stats), or None; ValueError naming the flag."""
  if _FEATURES_CONVENTION.value is None:
    return None
  statistics = None
  if _FEATURES_STATS.value is not None:
    try:
      statistics = conventions.read_statistics(_FEATURES_STATS.value)
    except ValueError as error:
      raise ValueError(f'--features_stats={error}') from None
  try:
    return conventions.parse(_FEATURES_CONVENTION.value, statistics)
  except ValueError as error:
    raise ValueError(f'--features_convention={_FEATURES_CONVENTION.value}: {error}') from None


def _converted(frames: np.ndarray, convention: conventions.MelConvention,
               trained: checkpointing.TrainedModel) -> np.ndarray:
  """--features frames in the vocoder's own log-mel; ValueError naming the flags."""
  if not isinstance(trained.features, features_lib.LogMel):
    raise ValueError(f'--features_convention={_FEATURES_CONVENTION.value}: converts mels for '
                     'a mel vocoder; this model is not one.')
  try:
    return conventions.convert_mel(frames, convention, trained.features)
  except ValueError as error:
    raise ValueError(f'--features={_FEATURES.value} as --features_convention='
                     f'{_FEATURES_CONVENTION.value}: {error}') from None


def _check_output() -> None:
  """Checks --output's suffix and that its WAVs can be written; creates its folder."""
  output = _OUTPUT.value
  if not output.lower().endswith('.wav'):
    raise ValueError(f'--output={output}: must end in .wav (a WAV file is written).')
  storage.check_remote_support(output, '--output')
  try:
    epath.Path(output).parent.mkdir(parents=True, exist_ok=True)
  except OSError as error:
    raise ValueError(f'--output={output}: cannot create its folder ({error}).') from error
  if storage.is_remote(output):
    return
  for path in _output_paths(output, _BATCH_SIZE.value):
    if os.path.isdir(path):
      raise ValueError(f'--output={output}: {path} is an existing folder.')
    if not os.access(os.path.dirname(os.path.abspath(path)), os.W_OK) or (
        os.path.exists(path) and not os.access(path, os.W_OK)):
      raise ValueError(f'--output={output}: {path} cannot be written (permission denied).')


def _check_length(num_samples: int, sample_rate: int) -> None:
  """Raises ValueError if a clip of num_samples is over --max_seconds or its WAVs do not fit."""
  seconds = num_samples / sample_rate
  if seconds > _MAX_SECONDS.value:
    source = 'features' if _FEATURES.value is not None else 'mel_from'
    raise ValueError(f'a clip would be {seconds:.2f} s long (prompt or --{source} input '
                     f'included), over --max_seconds={_MAX_SECONDS.value}.')
  if storage.is_remote(_OUTPUT.value):
    return
  needed = _BATCH_SIZE.value * (44 + 2 * num_samples)  # 16-bit PCM WAVs with 44-byte headers.
  folder = os.path.dirname(os.path.abspath(_OUTPUT.value))
  free = shutil.disk_usage(folder).free
  if needed > free:
    raise ValueError(f'--output={_OUTPUT.value}: the WAVs need {needed:,} bytes but {folder} '
                     f'has {free:,} bytes free.')


def _open_wav(path: str, sample_rate: int) -> audio_lib.StreamedWav:
  """path's StreamedWav; a one-line ValueError if another run writes it or it cannot be."""
  try:
    return audio_lib.StreamedWav(path, sample_rate)
  except audio_lib.OutputBusyError as error:
    raise ValueError(f'--output={_OUTPUT.value}: another process is writing {path} (it holds '
                     f'{error.filename}); wait for it or choose another --output.') from error
  except OSError as error:
    raise ValueError(f'--output={_OUTPUT.value}: cannot write {path} ({error}).') from error


@contextlib.contextmanager
def _writing(path: str, loss: str) -> Iterator[None]:
  """Turns an OSError writing path (a full disk) into a one-line ValueError naming the loss."""
  try:
    yield
  except OSError as error:
    raise ValueError(f'--output={_OUTPUT.value}: writing {path} failed '
                     f'({error.strerror or error}); {loss}.') from error


def _clipped_text(waveform: np.ndarray) -> str:
  """'; N samples beyond [-1, 1] clipped' for float32 [time] audio with any, else ''."""
  clipped = int(np.count_nonzero(np.abs(waveform) > 1.0))
  return (f'; {clipped:,} samples ({clipped / len(waveform):.2%}) beyond [-1, 1] clipped'
          if clipped else '')


@cli.exit_on_error(checkpointing.NoCheckpointError, audio_lib.AudioFileError, ValueError)
def main(argv):
  del argv  # cli.run checks that there are no positional arguments.
  began = time.perf_counter()
  _check_flags()
  _check_output()
  frames = None if _FEATURES.value is None else _read_features(_FEATURES.value)
  convention = _features_convention()
  trained = checkpointing.restore_for_inference(_WORKDIR.value, _STEP.value)
  if convention is not None:
    frames = _converted(frames, convention, trained)
  sample_rate, batch_size = trained.dataset_info.sample_rate, _BATCH_SIZE.value
  mel_from = None if _MEL_FROM.value is None else _read_audio('mel_from', _MEL_FROM.value,
                                                              sample_rate)
  prompt = None if _PROMPT.value is None else _read_audio('prompt', _PROMPT.value, sample_rate)
  try:
    conditioning = trained.conditioning(batch_size, speaker=_SPEAKER.value, mel_from=mel_from,
                                        features=frames, prompt=prompt)
  except ValueError as error:
    if frames is not None and str(error).startswith('features: '):
      raise ValueError(f'--features={_FEATURES.value}: {str(error)[len("features: "):]}'
                       ) from None
    raise ValueError(f'--{error}') from None
  start = 1 if prompt is None else len(prompt)
  num_samples = _num_samples(trained, prompt, mel_from, frames)
  segments = 1
  if conditioning['local_cond'] is not None and prompt is None and not _STREAM.value:
    segments = _segments(trained, start + num_samples, batch_size)  # Folding has no prompt.
  mesh = sampler.batch_mesh(1 if _KERNEL.value == 'pallas' else batch_size * segments)
  print(f'generating {batch_size} clip(s)' + (f' folded into {segments} segments each'
                                              if segments > 1 else '')
        + f' on {mesh.size} {mesh.devices.flat[0].platform} device(s)')

  load_seconds = time.perf_counter() - began
  progress = []
  paths = _output_paths(_OUTPUT.value, batch_size)
  streamed = not storage.is_remote(_OUTPUT.value)  # A URL's WAVs are written at the end.
  with contextlib.ExitStack() as stack:
    wavs = [stack.enter_context(_open_wav(path, sample_rate)) for path in paths if streamed]

    def on_chunk(pieces: np.ndarray) -> None:
      for wav, piece in zip(wavs, pieces):
        with _writing(wav.partial, 'the audio generated is lost (no WAV is left)'):
          wav.append(piece)

    def on_progress(report: synthesis.Progress) -> None:
      progress.append(report)
      _print_progress(report)

    rng = jax.random.key(_SEED.value)
    if _STREAM.value:
      waveforms = _stream_to(on_chunk, on_progress, trained.model, trained.variables, rng,
                             conditioning['local_cond'][0], start + num_samples,
                             conditioning['global_cond'], _KERNEL.value)
    else:
      waveforms = synthesis.synthesize(
          trained.model, trained.variables, rng, num_samples=num_samples,
          batch_size=batch_size, temperature=_TEMPERATURE.value, chunk_size=_CHUNK_SIZE.value,
          segments=segments, overlap_frames=_OVERLAP_FRAMES.value, on_progress=on_progress,
          on_chunk=on_chunk, mesh=mesh, kernel=_KERNEL.value, **conditioning)
    print(file=sys.stderr)
    for wav in wavs:
      with _writing(wav.partial, f'its clip is lost (no {wav.path} is left)'):
        wav.finish()
  _write(paths, waveforms, sample_rate, streamed, trained.config.data.mel)
  _print_real_time_factor(progress, num_samples / sample_rate, batch_size, sample_rate,
                          load_seconds, time.perf_counter() - began)


def _num_samples(trained: checkpointing.TrainedModel, prompt: Optional[np.ndarray],
                 mel_from: Optional[np.ndarray], frames: Optional[np.ndarray]) -> int:
  """Samples to generate after the prompt (or the start sample).

  As many as the conditioning covers (--mel_from, --features), else --seconds' worth (after
  the prompt; in all, the start sample included, without one).
  """
  start = 1 if prompt is None else len(prompt)
  if mel_from is not None:
    num_samples = len(mel_from) - start  # Output as long as the input.
  elif frames is not None:
    num_samples = len(frames) * trained.model.hop_length - start  # As long as the frames.
  else:
    num_samples = (round(_SECONDS.value * trained.dataset_info.sample_rate)
                   - (1 if prompt is None else 0))
  if num_samples < 1:
    raise ValueError('nothing to generate: --seconds (or the --mel_from input) is too short.')
  _check_length(start + num_samples, trained.dataset_info.sample_rate)
  return num_samples


def _segments(trained: checkpointing.TrainedModel, length: int, batch_size: int) -> int:
  """Segments each clip of `length` samples is folded into (--segments, or automatic)."""
  num_frames = trained.features.num_frames(length)
  segments = _SEGMENTS.value or synthesis.default_segments(
      num_frames, batch_size, _OVERLAP_FRAMES.value, jax.local_devices())
  try:
    plan = synthesis.fold_plan(num_frames, segments, _OVERLAP_FRAMES.value)
  except ValueError as error:
    raise ValueError(f'--{error}') from None
  if segments > 1 and not any(plan.starts):
    print(f'note: --overlap_frames={_OVERLAP_FRAMES.value} reaches back to frame 0 from every '
          f'segment: each of the {segments} segments generates the utterance from its start '
          f'({segments}x the work of --segments=1).')
  return segments


def _write(paths: list[str], waveforms: np.ndarray, sample_rate: int, streamed: bool,
           mel_config: Any) -> None:
  """Writes each clip's WAV (unless streamed already) and PNG, with a line each."""
  for path, waveform in zip(paths, waveforms):
    if not streamed:
      with _writing(path, 'its clip is lost'):
        audio_lib.write_wav(path, waveform, sample_rate)
    png = os.path.splitext(path)[0] + '.png'
    with _writing(png, f'{path} is complete but has no PNG'):
      plotting.save_waveform_and_spectrogram(png, waveform, sample_rate, mel_config,
                                             title=path)
    print(f'wrote {path} ({len(waveform) / sample_rate:.2f} s at {sample_rate} Hz'
          f'{_clipped_text(waveform)}) and its PNG')


def _print_real_time_factor(progress: list[synthesis.Progress], audio_seconds: float,
                            batch_size: int, sample_rate: int, load_seconds: float,
                            total_seconds: float) -> None:
  """The end-to-end and steady-state real-time factors of the run, in one line."""
  generate_seconds = progress[-1].seconds
  steady = _steady_state_rate(progress)
  steady_text = (f'= the chunks after the first, {steady * batch_size:,.0f} samples/s over the '
                 'batch)' if steady else 'needs several chunks: lower --chunk_size)')
  print(f'real-time factor: end_to_end={total_seconds / audio_seconds:.3f} steady_state='
        + (f'{sample_rate / steady:.3f}' if steady else 'n/a')
        + ' (wall seconds per second of generated audio per clip; end to end = setup '
        f'(checkpoint, inputs) {load_seconds:.1f} s + generation incl. compile '
        f'{generate_seconds:.1f} s; steady state {steady_text}')


def _stream_to(on_chunk: Callable[[np.ndarray], None],
               on_progress: Callable[[synthesis.Progress], None], model: WaveNet, variables: Any,
               rng: jax.Array, features: np.ndarray, length: int,
               global_cond: Optional[np.ndarray], kernel: str) -> np.ndarray:
  """Streams float32 [frames, n_mels] features frame by frame; float32 [1, length] waveform.

  Each frame's audio goes to on_chunk as [1, hop_length] (the last one trimmed to length);
  progress is reported every PROGRESS_FRAMES frames and at the end.
  """
  pieces, done = [], 0
  began = time.perf_counter()
  for index, piece in enumerate(synthesis.stream(model, variables, rng, features,
                                                 temperature=_TEMPERATURE.value,
                                                 global_cond=global_cond, kernel=kernel)):
    piece = piece[None, :length - done]
    done += piece.shape[1]
    pieces.append(piece)
    on_chunk(piece)
    if (index + 1) % PROGRESS_FRAMES == 0 or done == length:
      on_progress(synthesis.Progress(done - 1, length - 1, time.perf_counter() - began))
    if done == length:
      break
  return np.concatenate(pieces, axis=1)


def _steady_state_rate(progress: list[synthesis.Progress]) -> float | None:
  """Samples/s per clip after the first chunk (which includes compilation), or None."""
  if len(progress) < 2:
    return None
  first, last = progress[0], progress[-1]
  return (last.done - first.done) / max(last.seconds - first.seconds, 1e-9)


if __name__ == '__main__':
  sampler.use_every_cpu_core()
  cli.run(main)
