"""pytest setup shared by every test in this folder."""
import jax

# The equality tests compare float32 computations to 1e-4. On NVIDIA GPUs XLA's default float32
# matmul precision is TF32 (10-bit mantissa): there the cached step and the parallel forward
# differ by ~8e-4 (measured on an H100) and a change of the oldest sample in the receptive field
# can round away. 'highest' is true float32 everywhere; on CPUs it is what runs anyway.
jax.config.update('jax_default_matmul_precision', 'highest')
