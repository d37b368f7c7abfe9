"""The default speech model sized for a Cloud TPU pod slice (v4-64 / v5e-256), bf16 compute.

Data parallel over every chip of every host: the `data` mesh axis spans all devices, each
host reads its own rows of the global batch, parameters and optimizer state are replicated
(set config.mesh.fsdp > 1 and map e.g. ('gate', 'fsdp') in config.sharding_rules to shard
them instead). train.py on each worker calls jax.distributed.initialize() itself.

Command (every worker, see launch/tpu_vm.sh):
  launch/tpu_vm.sh run ... -- --config=experiments/tpu_pod.py --workdir=gs://BUCKET/runs/pod \
      --config.data.name=vctk
Hardware: TPU v4-64 (32 chips, 8 hosts) or v5e-256; the global batch 256 gives 8 or 1
crops per chip; scale config.train.batch_size with the slice (divisible by the chip count).
Expected result: not yet measured. Step time should stay flat from one host to the pod
(the only cross-host traffic is the gradient all-reduce of 1.26 M parameters).
"""
import ml_collections

from experiments import default


def get_config() -> ml_collections.ConfigDict:
  config = default.get_config()
  config.model.dtype = 'bfloat16'
  config.train.batch_size = 256
  config.train.learning_rate = 2e-3
  config.train.warmup_steps = 2000
  config.train.num_steps = 100_000
  config.train.log_every_steps = 200
  config.checkpoint.every_steps = 1000
  config.data.read_threads = 16
  config.mesh.data = -1
  config.mesh.fsdp = 1
  return config
