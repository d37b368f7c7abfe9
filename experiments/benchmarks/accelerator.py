r"""Accelerator check: what one fresh GPU or TPU host does with this library, in one command.

Command (from the repository root):
  python -m experiments.benchmarks.accelerator --output_dir=/tmp/accelerator_check
Hardware: one GPU or TPU host, all its local devices (one process). The defaults are sized to
finish in under 5 minutes there, 150 s of it training. A CPU runs it too, slowly; shrink it with
--config.model.* and the size flags (tests/test_accelerator_check.py does). Needs only jax, flax,
optax, orbax-checkpoint, absl-py, numpy, scipy, matplotlib, etils and tensorboard, plus the
wheels of requirements-accelerator.txt: no TensorFlow, no librosa.

In order:
  1. Train step: the model of experiments/default.py (--config's model without its speaker or
     mel conditioning) in float32 and in bfloat16: the trainer's jitted train_step (forward,
     backward, clipping, AdamW, EMA) on a state from create_train_state over config.mesh, fed
     a random batch of --step_batch_size sequences per device x (receptive field +
     --step_segment_length) samples. Reported: samples/s per device and the model FLOP
     utilisation, mfu = 3 x the forward's matmul FLOPs (train_step.forward_matmul_flops) per
     second and device / the device's peak in that dtype. The peak: the spec-sheet figure of
     PEAK_TFLOPS for the device kind and the arithmetic in effect (float32 matmuls follow
     jax_default_matmul_precision: TF32 on NVIDIA GPUs and one bfloat16 pass on TPUs unless it
     asks for more), else (CPUs, unknown devices) a large matmul in that dtype measured here.
  2. Training: --config (experiments/multispeaker.py) in bfloat16 without parameter EMA (too
     slow an average for a short run) on its data (the corpus embedded in the package unless
     config.data.wav_dir names a folder), prepared under
     OUTPUT_DIR/tensorflow_datasets, through trainer.train_and_evaluate for --train_seconds
     of training loop (config.train.max_seconds, compilation included), which stops with a
     checkpoint and a validation pass. Reported: steps, the samples/s (over all devices) of
     the last log window (config.train.log_every_steps; the first one includes compilation)
     and the validation bits/sample, read back from the run's TensorBoard events
     (OUTPUT_DIR/run).
  3. Clips: the checkpoint restored for inference generates --clip_seconds for every speaker,
     all speakers in one batch over the devices: OUTPUT_DIR/speaker_NAME.wav and a PNG of its
     waveform and log-mel spectrogram beside it.
  4. Generation: cached generation samples/s of that model at each --generation_batch_sizes
     (sampling.cached_rate: the batch split over sampler.batch_mesh; the median of --windows
     windows of --window_seconds after a warm-up call).
  5. The Pallas sampling kernel (`wavenet_jax.pallas_sampler`, on one device), timed likewise at
     batch 1, 8, 16 and 64 beside the XLA sampler's figures of step 4; on a GPU only (elsewhere
     it runs in Pallas interpret mode, whose timing is not a speed: "skipped" says so). A batch
     size the kernel fails at (not lowering for this GPU, say) reports its one-line error.
Output: a line per measurement, then as the last line the JSON summary, also written to
OUTPUT_DIR/summary.json (rates in samples/s; every figure names its dtype):
  {"devices": {"platform", "kind", "count"}, "versions": {"jax", "jaxlib", "flax", ...},
   "float32_matmul": {"jax_default_matmul_precision", "arithmetic"},
   "train_step": {"model", "batch_per_device", "samples_per_sequence",
                  "float32": {"dtype", "samples_per_s_per_device", "step_ms", "compile_s",
                              "model_tflops_per_device", "peak_tflops", "peak_source", "mfu"},
                  "bfloat16": {...}},
   "training": {"dtype", "train_seconds", "steps", "last_logged_samples_per_s",
                "validation_bits_per_sample", "wall_s"},
   "clips": {"dtype", "seconds", "sample_rate", "files": {SPEAKER: {"wav", "png"}}, "wall_s"},
   "generation": {"dtype", "batch_1": {"samples_per_s", "samples_per_s_per_device", "devices",
                  "range"}, ...},
   "pallas_generation": {"batch_1": {as generation's} or {"error"}, ...} or {"skipped"},
   "wall_seconds": from the parsed flags to the summary (Python and library imports excluded)}
"""
from wavenet_jax import cli

cli.exit_unless_run_as_module(__spec__, __file__)  # Run by path, `experiments` is not importable.
# pylint: disable=g-import-not-at-top,wrong-import-position
from wavenet_jax import host_memory

# Before JAX, grain or orbax start threads (see host_memory).
HOST_MEMORY_RETAINED = host_memory.retain_freed_host_memory()

import importlib.metadata  # pylint: disable=g-import-not-at-top,wrong-import-position
import json
import os
import platform
import re
import sys
import tempfile
import time
from typing import Any, Callable, Optional

from absl import app
from absl import flags
import flax
import jax
import jaxlib
import ml_collections
from ml_collections import config_flags
import numpy as np
from tensorboard.backend.event_processing import event_accumulator

from experiments import default
from experiments.benchmarks import sampling
from experiments.benchmarks import train_step as train_step_benchmark
from wavenet_jax import audio as audio_lib
from wavenet_jax import checkpointing
from wavenet_jax import optimizers
from wavenet_jax import plotting
from wavenet_jax import run_control
from wavenet_jax import sampler
from wavenet_jax import sharding
from wavenet_jax import synthesis
from wavenet_jax import trainer
from wavenet_jax.models import WaveNet, model_from_config

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_DEFAULT = default.get_config()


def exit_on_config_key_error(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
  """function(*args, **kwargs), or exit with one line where a --config override has no key.

  ml_collections raises AttributeError or KeyError for such an override, both where the flag is
  defined (it parses its default file then) and where the flags are parsed.
  """
  try:
    return function(*args, **kwargs)
  except (AttributeError, KeyError) as error:
    message = str(error)
    key = re.search(r"'([A-Za-z0-9_]+)", message)
    hint = re.search(r'Did you mean "[^"]*" instead of "[^"]*"\?', message)
    sys.exit(f'{os.path.basename(sys.argv[0])}: error: --config: no config key '
             f'{key.group(1) if key else message!r}' + (f' ({hint.group(0)})' if hint else ''))


_CONFIG = exit_on_config_key_error(
    config_flags.DEFINE_config_file, 'config', os.path.join(REPO, 'experiments', 'multispeaker.py'),
    "The training run's config; its model without conditioning is the step benchmark's. "
    'Override keys with --config.KEY=VALUE; the check itself sets model.dtype (bfloat16), '
    'train.max_seconds, train.ema_decay (0), eval.every_steps, '
    'sample.every_steps, checkpoint.every_steps and (when empty) data.data_dir.')
_OUTPUT_DIR = flags.DEFINE_string(
    'output_dir', None, 'Folder for summary.json, the clips, the training run (run/) and the '
    'prepared data (tensorflow_datasets/); must not hold a run already.', required=True)
_TRAIN_SECONDS = flags.DEFINE_float(
    'train_seconds', 150.0, 'Seconds of the training loop (compilation included).')
_STEP_BATCH_SIZE = flags.DEFINE_integer(
    'step_batch_size', _DEFAULT.train.batch_size,
    "Train-step benchmark: sequences per device (default experiments/default.py's batch).")
_STEP_SEGMENT_LENGTH = flags.DEFINE_integer(
    'step_segment_length', _DEFAULT.data.segment_length,
    'Train-step benchmark: samples per sequence beyond the receptive field (default '
    "experiments/default.py's).")
_GENERATION_BATCH_SIZES = flags.DEFINE_list(
    'generation_batch_sizes', ['1', '16', '256', '4096'], 'Batch sizes of the timed generation.')
_WINDOW_SECONDS = flags.DEFINE_float(
    'window_seconds', 1.0, 'Seconds of each timed window (train step and generation).')
_WINDOWS = flags.DEFINE_integer(
    'windows', 3, "Timed windows per measurement; the median window's rate is reported.")
_CLIP_SECONDS = flags.DEFINE_float('clip_seconds', 2.0, 'Seconds of every generated clip.')
_MATMUL_SIZE = flags.DEFINE_integer(
    'matmul_size', None, 'Side of the square matmul that measures the peak of devices not in '
    'PEAK_TFLOPS (default 2048 on CPUs, 8192 on other devices).')

# Dense peak TFLOP/s of one JAX device by device_kind and matmul arithmetic, from the spec sheets:
# - NVIDIA H100 SXM5 ('NVIDIA H100 80GB HBM3'): bf16 989.4, TF32 494.7, fp32 66.9 TFLOP/s (NVIDIA
#   H100 datasheet, tabulated at glennklockwood.com/garden/processors/h100). The H200 SXM
#   ('NVIDIA H200') has the same GH100 compute with more and faster HBM (same source).
# - H100 PCIe: bf16 756, TF32 378, fp32 51 (NVIDIA H100 datasheet: half its with-sparsity
#   1,513 / 756 TFLOP/s; fp32 51).
# - A100, SXM4 and PCIe, 40 and 80 GB: bf16 312, TF32 156, fp32 19.5 (NVIDIA A100 datasheet,
#   tabulated at glennklockwood.com/garden/processors/A100).
# - Cloud TPU (cloud.google.com/tpu/docs/v4, v5e, v5p, v6e: peak compute per chip, bf16; one
#   JAX device is one chip): v4 275, v5e ('TPU v5 lite') 197, v5p ('TPU v5') 459, v6e
#   ('TPU v6 lite') 918.
_H100_SXM = {'bfloat16': 989.4, 'tensorfloat32': 494.7, 'float32': 66.9}
_A100 = {'bfloat16': 312.0, 'tensorfloat32': 156.0, 'float32': 19.5}
PEAK_TFLOPS: dict[str, dict[str, float]] = {
    'NVIDIA H100 80GB HBM3': _H100_SXM,
    'NVIDIA H200': _H100_SXM,
    'NVIDIA H100 PCIe': {'bfloat16': 756.0, 'tensorfloat32': 378.0, 'float32': 51.0},
    'NVIDIA A100-SXM4-40GB': _A100,
    'NVIDIA A100-SXM4-80GB': _A100,
    'NVIDIA A100-PCIE-40GB': _A100,
    'NVIDIA A100 80GB PCIe': _A100,
    'TPU v4': {'bfloat16': 275.0},
    'TPU v5 lite': {'bfloat16': 197.0},
    'TPU v5': {'bfloat16': 459.0},
    'TPU v6 lite': {'bfloat16': 918.0},
}
# jax_default_matmul_precision values -> 0: fastest, 1: intermediate, 2: (nearly) true float32.
_PRECISION_LEVELS = {'default': 0, 'fastest': 0, 'bfloat16': 0, 'high': 1, 'tensorfloat32': 1,
                     'bfloat16_3x': 1, 'highest': 2, 'float32': 2}
# Samples per timed generate_chunk call over the batch (sampling.py's default).
GENERATION_CHUNK_ROWS = 8192
# Batch sizes of the Pallas kernel's timing (issue 27: the latency-bound small batches).
PALLAS_BATCH_SIZES = (1, 8, 16, 64)
# Packages whose versions the summary reports (those installed).
VERSIONED_PACKAGES = ('optax', 'orbax-checkpoint', 'numpy', 'jax-cuda12-plugin',
                      'jax-cuda13-plugin', 'libtpu')


def significant(value: float) -> float:
  """value to 4 significant digits (the summary's figures)."""
  return float(f'{value:.4g}')


def float32_matmul_arithmetic(device: jax.Device, precision: Optional[str]) -> str:
  """How float32 matmuls multiply on `device` at jax_default_matmul_precision `precision`.

  Returns:
    'float32' (true float32), 'tensorfloat32' (NVIDIA tensor cores), 'bfloat16', 'bfloat16_3x'
    or 'bfloat16_6x' (TPU passes), or 'platform default' where not known here (a GPU not in
    PEAK_TFLOPS, a dot algorithm name).
  """
  if device.platform == 'cpu':
    return 'float32'
  level = _PRECISION_LEVELS.get((precision or 'default').lower())
  nvidia = device.platform == 'gpu' and device.device_kind in PEAK_TFLOPS  # Ampere or newer.
  if level is None or not (nvidia or device.platform == 'tpu'):
    return 'platform default'
  if nvidia:
    return ('tensorfloat32', 'tensorfloat32', 'float32')[level]
  return ('bfloat16', 'bfloat16_3x', 'bfloat16_6x')[level]


def device_peak_tflops(device: jax.Device, dtype: str, arithmetic: str,
                       matmul_size: int) -> tuple[float, str]:
  """(peak TFLOP/s of one device for matmuls in `dtype`, where the figure comes from).

  Args:
    arithmetic: from `float32_matmul_arithmetic` (what float32 matmuls run as).
    matmul_size: side of the measured matmul, for devices not in PEAK_TFLOPS.
  """
  kind_peaks = PEAK_TFLOPS.get(device.device_kind, {})
  arithmetic = 'bfloat16' if dtype == 'bfloat16' else arithmetic
  if arithmetic in kind_peaks:
    return kind_peaks[arithmetic], f'spec sheet: {device.device_kind}, dense {arithmetic}'
  measured = train_step_benchmark.matmul_peak_gflops(matmul_size, dtype) / 1e3
  return measured, (f'measured: best [{matmul_size}, {matmul_size}] {dtype} matmul on one '
                    'device (at jax_default_matmul_precision)')


def versions() -> dict[str, str]:
  """Python, jax, jaxlib, flax and those of VERSIONED_PACKAGES that are installed."""
  found = {'python': platform.python_version(), 'jax': jax.__version__,
           'jaxlib': jaxlib.__version__, 'flax': flax.__version__}
  for name in VERSIONED_PACKAGES:
    try:
      found[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      pass
  return found


def step_model(config: ml_collections.ConfigDict, dtype: str) -> WaveNet:
  """config's WaveNet without speaker or mel conditioning, computing in `dtype`."""
  model_config = config.model.copy_and_resolve_references()
  model_config.global_conditioning = False
  model_config.local_conditioning = False
  model_config.dtype = dtype
  return model_from_config(model_config, config.data, speakers=())


def benchmark_train_step(config: ml_collections.ConfigDict, model: WaveNet,
                         batch_per_device: int, segment_length: int, window_seconds: float,
                         windows: int) -> dict[str, Any]:
  """The trainer's jitted train step of `model` on a random batch, timed.

  The batch: int32 μ-law classes [batch_per_device x devices, receptive field + segment_length]
  (mask all ones), split over config.mesh like the trainer's.

  Returns:
    the step's figures (see the module docstring's "train_step"), but for the peak and mfu.
  """
  mesh = sharding.create_mesh(config.mesh)
  rules = sharding.rules_from_config(config)
  optimizer = optimizers.create_optimizer(config.train)
  learning_rate_fn = optimizers.create_learning_rate_fn(config.train)
  state, state_shardings = trainer.create_train_state(
      jax.random.key(config.seed), model, optimizer, config.train.ema_decay > 0.0, mesh, rules)
  batch_sharding = sharding.batch_sharding(mesh, rules)
  num_devices = jax.device_count()
  shape = (batch_per_device * num_devices, model.receptive_field + segment_length)
  batch = jax.device_put(
      {'audio': np.random.default_rng(0).integers(0, model.num_classes, shape, np.int32),
       'mask': np.ones(shape, np.float32)}, batch_sharding)
  step = trainer.make_train_step(model, optimizer, learning_rate_fn, config.train.ema_decay,
                                 state_shardings, batch_sharding)
  began = time.perf_counter()
  state, metrics = step(state, batch)
  jax.block_until_ready(metrics)
  compile_seconds = time.perf_counter() - began

  def run() -> trainer.Metrics:
    nonlocal state
    state, step_metrics = step(state, batch)
    return step_metrics

  rate, _, _ = sampling.timed_rate(run, shape[0] * shape[1], window_seconds * windows, windows)
  per_device = rate / num_devices
  tflops = per_device * 3 * train_step_benchmark.forward_matmul_flops(model, 1) / 1e12
  return {
      'dtype': np.dtype(model.dtype).name,
      'samples_per_s_per_device': significant(per_device),
      'step_ms': significant(1e3 * shape[0] * shape[1] / rate),
      'compile_s': significant(compile_seconds),
      'model_tflops_per_device': significant(tflops),
  }


def last_scalar(workdir: str, tag: str) -> float:
  """The last value of scalar `tag` in workdir's TensorBoard event files."""
  events = event_accumulator.EventAccumulator(
      workdir, size_guidance={event_accumulator.SCALARS: 0})
  events.Reload()
  if tag not in events.Tags()[event_accumulator.SCALARS]:
    raise ValueError(f'{workdir}: the training run logged no {tag!r}.')
  return float(events.Scalars(tag)[-1].value)


def train(config: ml_collections.ConfigDict, workdir: str, train_seconds: float) -> dict[str, Any]:
  """Trains config in bfloat16 for train_seconds, ending with a checkpoint and a validation.

  Returns:
    the run's figures (see the module docstring's "training").
  """
  config.model.dtype = 'bfloat16'
  config.train.max_seconds = train_seconds
  # No parameter EMA: the configs' 0.9999 averages over ~10,000 steps, more than such a run
  # makes, so its weights would still be mostly the initial ones. The trained weights are
  # evaluated and sampled.
  config.train.ema_decay = 0.0
  # One evaluation and one checkpoint: where the time runs out (or at num_steps); clips below.
  config.eval.every_steps = config.train.num_steps
  config.checkpoint.every_steps = config.train.num_steps
  config.sample.every_steps = 0
  began = time.perf_counter()
  state = trainer.train_and_evaluate(config, workdir)
  wall = time.perf_counter() - began
  return {
      'dtype': config.model.dtype,
      'train_seconds': train_seconds,
      'steps': int(jax.device_get(state.step)),
      'last_logged_samples_per_s': significant(last_scalar(workdir, 'train/samples_per_s')),
      'validation_bits_per_sample': significant(last_scalar(workdir, 'eval/bits_per_sample')),
      'wall_s': significant(wall),
  }


def clip_names(speakers: tuple[str, ...], num_speakers: int) -> list[str]:
  """File stems of the clips: speaker_NAME per speaker (file-name safe), or 'generated'."""
  if not num_speakers:
    return ['generated']
  return ['speaker_' + re.sub(r'[^A-Za-z0-9_.-]', '_', name) for name in speakers]


def write_clips(workdir: str, output_dir: str, seconds: float
                ) -> tuple[dict[str, Any], checkpointing.TrainedModel]:
  """Restores the run's last checkpoint for inference and writes a clip (WAV + PNG) per speaker.

  Returns:
    (the clips' figures, the restored model).
  """
  trained = checkpointing.restore_for_inference(workdir)
  config, info, model = trained.config, trained.dataset_info, trained.model
  names = clip_names(info.speakers, model.num_speakers)
  num_clips = len(names)
  global_cond = np.arange(num_clips, dtype=np.int32) if model.num_speakers else None
  began = time.perf_counter()
  # float32 [clips, round(seconds * rate)]: the silent start sample, then the generated ones.
  waveforms = synthesis.synthesize(
      model, trained.variables, jax.random.key(config.seed),
      num_samples=round(seconds * info.sample_rate) - 1, batch_size=num_clips,
      global_cond=global_cond, mesh=sampler.batch_mesh(num_clips))
  wall = time.perf_counter() - began
  files = {}
  for name, waveform in zip(names, waveforms):
    wav, png = (os.path.join(output_dir, f'{name}.{extension}') for extension in ('wav', 'png'))
    audio_lib.write_wav(wav, waveform, info.sample_rate)
    plotting.save_waveform_and_spectrogram(png, waveform, info.sample_rate, config.data.mel,
                                           title=f'{name}: accelerator check, step {trained.step}')
    files[name] = {'wav': wav, 'png': png}
  figures = {'dtype': np.dtype(model.dtype).name, 'seconds': seconds,
             'sample_rate': info.sample_rate, 'files': files, 'wall_s': significant(wall)}
  return figures, trained


def benchmark_generation(trained: checkpointing.TrainedModel, batch_size: int,
                         window_seconds: float, windows: int,
                         kernel: str = 'xla') -> dict[str, Any]:
  """Cached generation samples/s of the trained model at batch_size (speakers cycled), by the
  sampler `kernel` (sampler.KERNELS)."""
  model = trained.model
  global_cond = None
  if model.num_speakers:
    global_cond = np.arange(batch_size, dtype=np.int32) % model.num_speakers
  median, low, high = sampling.cached_rate(
      model, trained.variables, batch_size, chunk_rows=GENERATION_CHUNK_ROWS, temperature=1.0,
      seconds=window_seconds * windows, windows=windows, global_cond=global_cond, kernel=kernel)
  devices = sampler.batch_mesh(batch_size).size if kernel == 'xla' else 1
  return {'samples_per_s': significant(median),
          'samples_per_s_per_device': significant(median / devices), 'devices': devices,
          'range': [significant(low), significant(high)]}


def benchmark_pallas_generation(trained: checkpointing.TrainedModel, window_seconds: float,
                                windows: int) -> dict[str, Any]:
  """The Pallas kernel's `benchmark_generation` at PALLAS_BATCH_SIZES, on a GPU only."""
  if jax.default_backend() != 'gpu':
    return {'skipped': f'on {jax.default_backend()} the Pallas kernel runs in interpret mode, '
                       'whose timing is not a speed'}
  figures = {}
  for batch_size in PALLAS_BATCH_SIZES:
    try:
      figures[f'batch_{batch_size}'] = benchmark_generation(trained, batch_size, window_seconds,
                                                            windows, kernel='pallas')
      rate = f'{figures[f"batch_{batch_size}"]["samples_per_s"]:,.1f} samples/s'
    except Exception as error:  # pylint: disable=broad-except
      # A kernel that does not lower (or fit) on this GPU is a finding, not the check's end.
      rate = f'{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ""}'
      figures[f'batch_{batch_size}'] = {'error': rate}
    print(f'pallas generation, batch {batch_size}: {rate}', flush=True)
  return figures


def check_flags(config: ml_collections.ConfigDict) -> list[int]:
  """Raises ValueError naming the first bad flag; returns the generation batch sizes."""
  for flag, value in (('train_seconds', _TRAIN_SECONDS.value),
                      ('window_seconds', _WINDOW_SECONDS.value),
                      ('clip_seconds', _CLIP_SECONDS.value)):
    if not value > 0:
      raise ValueError(f'--{flag} must be > 0, got {value}.')
  for flag, value in (('windows', _WINDOWS.value), ('step_batch_size', _STEP_BATCH_SIZE.value),
                      ('step_segment_length', _STEP_SEGMENT_LENGTH.value),
                      ('matmul_size', _MATMUL_SIZE.value)):
    if value is not None and value < 1:
      raise ValueError(f'--{flag} must be >= 1, got {value}.')
  try:
    batch_sizes = [int(size) for size in _GENERATION_BATCH_SIZES.value]
  except ValueError:
    raise ValueError('--generation_batch_sizes must be integers, got '
                     f'{",".join(_GENERATION_BATCH_SIZES.value)!r}.') from None
  if not batch_sizes or min(batch_sizes) < 1:
    raise ValueError('--generation_batch_sizes must list batch sizes >= 1, got '
                     f'{",".join(_GENERATION_BATCH_SIZES.value)!r}.')
  if config.model.local_conditioning:
    raise ValueError('--config: the check generates without mel features; '
                     'config.model.local_conditioning must be False.')
  output_dir = _OUTPUT_DIR.value
  try:
    os.makedirs(output_dir, exist_ok=True)
    with tempfile.TemporaryFile(dir=output_dir):
      pass
  except OSError as error:
    raise ValueError(f'--output_dir={output_dir} is not writable ({error}).') from None
  workdir = os.path.join(output_dir, 'run')
  if os.path.isdir(workdir) and os.listdir(workdir):
    raise ValueError(f'--output_dir={output_dir} already holds a training run ({workdir}): '
                     'remove it or choose another folder.')
  if jax.process_count() > 1:
    raise ValueError('the check runs as one process (its timing loops are not synchronised).')
  return batch_sizes


@cli.exit_on_error(ValueError, FileNotFoundError, run_control.TrainingDivergedError)
def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  began = time.perf_counter()
  cli.quiet_console()
  config = _CONFIG.value
  batch_sizes = check_flags(config)
  output_dir = os.path.abspath(_OUTPUT_DIR.value)
  window_seconds, windows = _WINDOW_SECONDS.value, _WINDOWS.value
  device = jax.devices()[0]
  precision = jax.config.jax_default_matmul_precision
  arithmetic = float32_matmul_arithmetic(device, precision)
  summary: dict[str, Any] = {
      'devices': {'platform': device.platform, 'kind': device.device_kind,
                  'count': jax.device_count()},
      'versions': versions(),
      'float32_matmul': {'jax_default_matmul_precision': precision, 'arithmetic': arithmetic},
  }
  print(f'{jax.device_count()} x {device.device_kind} ({device.platform}); '
        f'{summary["versions"]}; float32 matmuls: {arithmetic} '
        f'(jax_default_matmul_precision={precision}); freed host memory retained: '
        f'{HOST_MEMORY_RETAINED}', flush=True)

  matmul_size = _MATMUL_SIZE.value or (2048 if device.platform == 'cpu' else 8192)
  step_figures: dict[str, Any] = {}
  for dtype in ('float32', 'bfloat16'):
    model = step_model(config, dtype)
    figures = benchmark_train_step(config, model, _STEP_BATCH_SIZE.value,
                                   _STEP_SEGMENT_LENGTH.value, window_seconds, windows)
    # Measured (where it is) right after the step: the load of a shared machine then weighs on
    # both alike.
    peak_tflops, figures['peak_source'] = device_peak_tflops(device, dtype, arithmetic,
                                                             matmul_size)
    figures['peak_tflops'] = significant(peak_tflops)
    figures['mfu'] = significant(figures['model_tflops_per_device'] / peak_tflops)
    step_figures[dtype] = figures
    print(f'train step, {dtype}: {figures["samples_per_s_per_device"]:,.0f} samples/s per '
          f'device ({figures["step_ms"]:.1f} ms per step), {figures["model_tflops_per_device"]:.3f}'
          f' model TFLOP/s per device, mfu {figures["mfu"]:.3f} of {figures["peak_tflops"]:.3f} '
          f'TFLOP/s ({figures["peak_source"]}); compile + first step {figures["compile_s"]:.1f} s',
          flush=True)
  summary['train_step'] = {
      'model': (f'{model.num_layers} layers, {model.num_stacks} stacks, residual '
                f'{model.residual_channels}, gate {model.gate_channels}, skip '
                f'{model.skip_channels}, receptive field {model.receptive_field}'),
      'batch_per_device': _STEP_BATCH_SIZE.value,
      'samples_per_sequence': model.receptive_field + _STEP_SEGMENT_LENGTH.value,
      **step_figures}

  workdir = os.path.join(output_dir, 'run')
  if not config.data.data_dir:
    config.data.data_dir = os.path.join(output_dir, 'tensorflow_datasets')
  summary['training'] = train(config, workdir, _TRAIN_SECONDS.value)
  print(f'training, bfloat16: {summary["training"]["steps"]} steps in {_TRAIN_SECONDS.value:g} s '
        f'of training loop, {summary["training"]["last_logged_samples_per_s"]:,.0f} samples/s '
        'in the last log window, '
        f'validation {summary["training"]["validation_bits_per_sample"]:.4f} bits/sample',
        flush=True)

  summary['clips'], trained = write_clips(workdir, output_dir, _CLIP_SECONDS.value)
  print(f'clips: {", ".join(summary["clips"]["files"])} ({_CLIP_SECONDS.value:g} s each, '
        f'generated in {summary["clips"]["wall_s"]:.1f} s) in {output_dir}', flush=True)

  generation: dict[str, Any] = {'dtype': np.dtype(trained.model.dtype).name}
  for batch_size in batch_sizes:
    figures = benchmark_generation(trained, batch_size, window_seconds, windows)
    generation[f'batch_{batch_size}'] = figures
    print(f'cached generation, batch {batch_size} over {figures["devices"]} device(s): '
          f'{figures["samples_per_s"]:,.1f} samples/s (median of {windows} windows; range '
          f'{figures["range"][0]:,.1f} - {figures["range"][1]:,.1f})', flush=True)
  summary['generation'] = generation
  summary['pallas_generation'] = benchmark_pallas_generation(trained, window_seconds, windows)
  summary['wall_seconds'] = significant(time.perf_counter() - began)
  line = json.dumps(summary)
  with open(os.path.join(output_dir, 'summary.json'), 'w') as f:
    f.write(line + '\n')
  print(line, flush=True)


if __name__ == '__main__':
  app.run(main, flags_parser=lambda argv: exit_on_config_key_error(flags.FLAGS, argv))
