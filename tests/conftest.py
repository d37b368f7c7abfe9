"""pytest setup shared by every test in this folder."""
import jax

import training_runs

# The equality tests compare float32 computations to 1e-4. On NVIDIA GPUs XLA's default float32
# matmul precision is TF32 (10-bit mantissa): there the cached step and the parallel forward
# differ by ~8e-4 (measured on an H100) and a change of the oldest sample in the receptive field
# can round away. 'highest' is true float32 everywhere; on CPUs it is what runs anyway.
jax.config.update('jax_default_matmul_precision', 'highest')
jax.config.update('jax_compilation_cache_dir', training_runs.COMPILATION_CACHE)
jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.0)
