"""Paper-like speech WaveNet: 30 layers = 3 stacks of dilations 1..512, 16 kHz, μ-law 256.

Command:
  python train.py --config=experiments/default.py --workdir=runs/default \
      --config.data.wav_dir=/path/to/wavs
Hardware: one GPU or TPU host (global batch 16 x 8000-sample segments). On a 2-core CPU it runs,
but slowly; use experiments/tiny.py there.
Expected result: see the results table in README.md.
Every key's comment here is its entry in docs/configs.md
(`python -m experiments.tools.config_reference > docs/configs.md`).
"""
import ml_collections

from wavenet_jax import linguistic


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0  # Parameters' init, the data's order and crops, the clips' noise.

  # Input: TFDS-prepared audio. name='audio_folder' reads wav_dir ('' = the corpus embedded in
  # the package); other names are TFDS catalog datasets (ljspeech, vctk, nsynth, speech_commands).
  config.data = ml_collections.ConfigDict()
  config.data.name = 'audio_folder'  # Or a TFDS catalog name (needs the tensorflow extra).
  config.data.wav_dir = ''  # Folder of .wav/.flac/.ogg (+ metadata.csv); '' = embedded corpus.
  config.data.data_dir = ''  # TFDS data_dir; '' = TFDS's default (~/tensorflow_datasets).
  config.data.sample_rate = 16000  # Hz; audio at another rate is resampled (soxr).
  config.data.segment_length = 8000  # Samples per crop beyond the receptive field.
  config.data.validation_fraction = 0.05  # Files held out, by hash of their name.
  config.data.top_db = 0.0  # > 0: trim leading/trailing silence quieter than this.
  # > 0: each training crop is played r times faster, r uniform in [1 - p, 1 + p] (pitch and
  # tempo; not with local conditioning, whose mel frames would no longer match).
  config.data.speed_perturbation = 0.0
  config.data.read_threads = 4  # Threads reading and cropping examples, per host.
  # Moved to config.model.preemphasis; a config or command line that still sets it is read
  # there, with a notice.
  config.data.preemphasis = ml_collections.config_dict.placeholder(float)
  # Log-mel features of a vocoder's local conditioning (and of the experiments' metrics).
  config.data.mel = ml_collections.ConfigDict()
  config.data.mel.n_mels = 80  # Mel bands per frame.
  config.data.mel.hop_length = 256  # Samples per frame.
  config.data.mel.n_fft = 1024  # STFT window, samples.
  config.data.mel.fmin = 0.0  # Lowest mel band edge, Hz.
  config.data.mel.fmax = 8000.0  # Highest mel band edge, Hz.
  # The local conditioning's features (config.model.local_conditioning), frame k covering samples
  # [k * hop_length, (k + 1) * hop_length); stored with the prepared audio, normalised with their
  # training-set statistics (docs/tts.md).
  config.data.features = ml_collections.ConfigDict()
  # 'mel' = the log-mel of the audio (config.data.mel; the keys below unused); 'files' = float32
  # [frames, channels] arrays <stem>.npy per audio file; 'labels' = the paper's linguistic
  # features + log-F0 made from each audio file's <stem>.lab when the folder is prepared.
  config.data.features.source = 'mel'
  # Samples per frame of 'files' and 'labels' features.
  config.data.features.hop_length = linguistic.DEFAULT_HOP_LENGTH
  config.data.features.channels = 0  # Channels of 'files' arrays ('labels': from the phone set).
  config.data.features.dir = ''  # 'files': folder mirroring the audio's paths ('' = beside it).
  # 'labels': the phone set of the one-hots (saved with the checkpoint; others -> 'unknown').
  config.data.features.phones = linguistic.FESTIVAL_PHONES
  # Per-channel normalisation over the training set of 'files' and 'labels' features:
  # 'standard' = (x - mean) / std; 'min_max' = (x - min) / (max - min), into [0, 1];
  # 'standard_non_binary' = 'standard' but channels holding only 0 and 1 left as they are (for
  # the linguistic features: standardising puts a rare phone's one-hot 1 at 20-100).
  config.data.features.normalisation = 'standard'

  # The network (wavenet_jax.models.WaveNet) and its output head.
  config.model = ml_collections.ConfigDict()
  config.model.num_layers = 30  # Residual layers in all stacks.
  config.model.num_stacks = 3  # Dilations restart at 1 in each stack (1, 2, ..., 512).
  config.model.kernel_size = 2  # Taps of each dilated causal convolution.
  config.model.residual_channels = 64  # Width of the residual stream.
  config.model.gate_channels = 128  # Dilated conv outputs, halved by tanh * sigmoid.
  config.model.skip_channels = 256  # Width of the skip sum and the output head.
  config.model.global_conditioning = False  # Speaker ids from the dataset.
  config.model.speaker_embedding_dim = 16  # Width of a speaker's embedding row.
  config.model.local_conditioning = False  # Log-mel features (config.data.mel).
  config.model.upsample_method = 'transposed'  # Mel to audio rate: learned, or 'repeat'.
  config.model.upsample_scales = (4, 4, 4, 4)  # Product = config.data.mel.hop_length.
  # > 0: the features are first projected to this many channels at frame rate (one linear
  # layer), so that upsampling them and each layer's projection of them are that narrow.
  config.model.local_cond_projection = 0
  # Input embedding start: 'normal' or 'mulaw_sinusoid' (rows ordered like the classes).
  config.model.embedding_init = 'normal'
  # 'mulaw_softmax' (the paper's 256-way softmax) or 'mixture_of_logistics' (a discretized
  # mixture of logistics over 16-bit samples: num_mixtures components, log scales floored at
  # log_scale_min; see wavenet_jax/distributions.py).
  config.model.output = 'mulaw_softmax'
  config.model.num_mixtures = 10  # Logistic components (mixture_of_logistics only).
  config.model.log_scale_min = -14.0  # Floor of the components' log scales.
  # > 0: the model's classes are of the pre-emphasised waveform x[t] - p x[t - 1] (its codec
  # filters before encoding and de-emphasises generated audio with the inverse filter).
  config.model.preemphasis = 0.0
  config.model.dtype = 'float32'  # 'bfloat16' for bf16 compute.

  # The optimizer (AdamW after a linear warmup) and the length of the run.
  config.train = ml_collections.ConfigDict()
  config.train.batch_size = 16  # Global, over all hosts and devices.
  config.train.num_steps = 200_000  # Training steps; a resumed run continues to it.
  # > 0: stop after this many seconds from the run's start (preparing data, restoring and
  # compiling included), with a checkpoint and a final evaluation, even before num_steps.
  config.train.max_seconds = 0.0
  config.train.learning_rate = 1e-3  # Peak, reached after warmup_steps.
  config.train.warmup_steps = 1000  # Linear warmup from 0.
  config.train.decay = 'cosine'  # 'cosine' or 'constant' after warmup.
  config.train.weight_decay = 0.0  # AdamW's decoupled weight decay.
  config.train.grad_clip_norm = 1.0  # Gradients clipped to this global norm.
  config.train.ema_decay = 0.9999  # 0 disables the parameter EMA.
  config.train.log_every_steps = 100  # Console and TensorBoard training metrics.
  # On resume, speakers the checkpoint does not know get new embedding rows (initialised
  # as at the start of a run) instead of an error.
  config.train.grow_speakers = False
  # Start a new run from another run's parameters (and EMA) with a fresh optimizer at step 0:
  # 'WORKDIR' (its latest checkpoint) or 'WORKDIR@STEP'; '' = from scratch. The architecture
  # must match; the model keeps that run's feature statistics, and new speakers get rows.
  # Ignored (with a notice) once this run's workdir holds a checkpoint: it resumes from that.
  config.train.init_from = ''

  # Periodic validation (teacher-forced bits/sample on crops of the validation split).
  config.eval = ml_collections.ConfigDict()
  config.eval.every_steps = 5000  # 0 disables periodic evaluation.
  config.eval.num_batches = 16  # Validation batches per evaluation.

  # Periodic generated clips (workdir/samples/step_N.wav and TensorBoard audio).
  config.sample = ml_collections.ConfigDict()
  config.sample.every_steps = 20_000  # 0 disables the generated clips.
  config.sample.seconds = 1.0  # Length of each clip.

  # Orbax checkpoints in workdir/checkpoints (also written on SIGTERM and at the end).
  config.checkpoint = ml_collections.ConfigDict()
  config.checkpoint.every_steps = 2000  # Steps between checkpoints.
  config.checkpoint.max_to_keep = 3  # Older checkpoints are deleted.

  # Device mesh: the data axis takes what the others leave (-1). Logical parameter axes map
  # to mesh axes by these rules; data parallel = everything replicated.
  config.mesh = ml_collections.ConfigDict()
  config.mesh.data = -1  # Devices on the data axis; -1 = all the others leave.
  config.mesh.fsdp = 1  # Devices parameters are sharded over (by config.sharding_rules).
  # Logical axis -> mesh axes; None = replicated.
  config.sharding_rules = (
      ('batch', ('data', 'fsdp')),
      ('vocab', None), ('residual', None), ('gate', None), ('skip', None), ('head', None),
      ('taps', None), ('layers', None), ('speakers', None), ('cond', None),
  )
  return config
