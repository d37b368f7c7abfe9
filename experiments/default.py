"""Paper-like speech WaveNet: 30 layers = 3 stacks of dilations 1..512, 16 kHz, μ-law 256.

Command:
  python train.py --config=experiments/default.py --workdir=runs/default \
      --config.data.wav_dir=/path/to/wavs
Hardware: one GPU or TPU host (global batch 16 x 8000-sample segments). On a 2-core CPU it runs,
but slowly; use experiments/tiny.py there.
Expected result: see the results table in README.md.
"""
import ml_collections

from wavenet_jax import linguistic


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0

  # Input: TFDS-prepared audio. name='audio_folder' reads wav_dir ('' = the corpus embedded in
  # the package); other names are TFDS catalog datasets (ljspeech, vctk, nsynth, speech_commands).
  config.data = ml_collections.ConfigDict()
  config.data.name = 'audio_folder'
  config.data.wav_dir = ''
  config.data.data_dir = ''  # TFDS data_dir; '' = TFDS's default (~/tensorflow_datasets).
  config.data.sample_rate = 16000
  config.data.segment_length = 8000  # Samples per crop beyond the receptive field.
  config.data.validation_fraction = 0.05
  config.data.top_db = 0.0  # > 0: trim leading/trailing silence quieter than this.
  # > 0: each training crop is played r times faster, r uniform in [1 - p, 1 + p] (pitch and
  # tempo; not with local conditioning, whose mel frames would no longer match).
  config.data.speed_perturbation = 0.0
  config.data.read_threads = 4  # Threads reading and cropping examples, per host.
  # Moved to config.model.preemphasis; a config or command line that still sets it is read
  # there, with a notice.
  config.data.preemphasis = ml_collections.config_dict.placeholder(float)
  config.data.mel = ml_collections.ConfigDict()
  config.data.mel.n_mels = 80
  config.data.mel.hop_length = 256
  config.data.mel.n_fft = 1024
  config.data.mel.fmin = 0.0
  config.data.mel.fmax = 8000.0
  # The local conditioning's features (config.model.local_conditioning), frame k covering samples
  # [k * hop_length, (k + 1) * hop_length): source 'mel' = the log-mel of the audio (config.data.mel
  # above; hop_length/channels/dir/phones unused); 'files' = float32 [frames, channels] arrays
  # <stem>.npy beside each audio file or at its path under dir ('' = beside); 'labels' = the
  # paper's linguistic features + log-F0 made from each audio file's <stem>.lab when the folder is
  # prepared, one-hot over `phones` (channels follow from them: wavenet_jax/linguistic.py).
  # Stored with the prepared audio; normalised with their training-set statistics. docs/tts.md.
  config.data.features = ml_collections.ConfigDict()
  config.data.features.source = 'mel'
  config.data.features.hop_length = linguistic.DEFAULT_HOP_LENGTH
  config.data.features.channels = 0
  config.data.features.dir = ''
  config.data.features.phones = linguistic.FESTIVAL_PHONES

  config.model = ml_collections.ConfigDict()
  config.model.num_layers = 30
  config.model.num_stacks = 3
  config.model.kernel_size = 2
  config.model.residual_channels = 64
  config.model.gate_channels = 128
  config.model.skip_channels = 256
  config.model.global_conditioning = False  # Speaker ids from the dataset.
  config.model.speaker_embedding_dim = 16
  config.model.local_conditioning = False  # Log-mel features (config.data.mel).
  config.model.upsample_method = 'transposed'
  config.model.upsample_scales = (4, 4, 4, 4)  # Product = config.data.mel.hop_length.
  # Input embedding start: 'normal' or 'mulaw_sinusoid' (rows ordered like the classes).
  config.model.embedding_init = 'normal'
  # 'mulaw_softmax' (the paper's 256-way softmax) or 'mixture_of_logistics' (a discretized
  # mixture of logistics over 16-bit samples: num_mixtures components, log scales floored at
  # log_scale_min; see wavenet_jax/distributions.py).
  config.model.output = 'mulaw_softmax'
  config.model.num_mixtures = 10
  config.model.log_scale_min = -14.0
  # > 0: the model's classes are of the pre-emphasised waveform x[t] - p x[t - 1] (its codec
  # filters before encoding and de-emphasises generated audio with the inverse filter).
  config.model.preemphasis = 0.0
  config.model.dtype = 'float32'  # 'bfloat16' for bf16 compute.

  config.train = ml_collections.ConfigDict()
  config.train.batch_size = 16  # Global, over all hosts and devices.
  config.train.num_steps = 200_000
  # > 0: stop after this many seconds of the training loop (compilation included), with a
  # checkpoint and a final evaluation, even before num_steps.
  config.train.max_seconds = 0.0
  config.train.learning_rate = 1e-3
  config.train.warmup_steps = 1000
  config.train.decay = 'cosine'  # 'cosine' or 'constant' after warmup.
  config.train.weight_decay = 0.0
  config.train.grad_clip_norm = 1.0
  config.train.ema_decay = 0.9999  # 0 disables the parameter EMA.
  config.train.log_every_steps = 100
  # On resume, speakers the checkpoint does not know get new embedding rows (initialised
  # as at the start of a run) instead of an error.
  config.train.grow_speakers = False

  # Periodic validation (teacher-forced bits/sample on crops of the validation split).
  config.eval = ml_collections.ConfigDict()
  config.eval.every_steps = 5000  # 0 disables periodic evaluation.
  config.eval.num_batches = 16

  # Periodic generated clips (workdir/samples/step_N.wav and TensorBoard audio).
  config.sample = ml_collections.ConfigDict()
  config.sample.every_steps = 20_000  # 0 disables the generated clips.
  config.sample.seconds = 1.0

  config.checkpoint = ml_collections.ConfigDict()
  config.checkpoint.every_steps = 2000
  config.checkpoint.max_to_keep = 3

  # Device mesh: the data axis takes what the others leave (-1). Logical parameter axes map
  # to mesh axes by these rules; data parallel = everything replicated.
  config.mesh = ml_collections.ConfigDict()
  config.mesh.data = -1
  config.mesh.fsdp = 1
  config.sharding_rules = (
      ('batch', ('data', 'fsdp')),
      ('vocab', None), ('residual', None), ('gate', None), ('skip', None), ('head', None),
      ('taps', None), ('layers', None), ('speakers', None), ('cond', None),
  )
  return config
