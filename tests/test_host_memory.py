"""host_memory.retain_freed_host_memory: XLA:CPU's freed buffers are reused, not faulted in."""
import subprocess
import sys

import pytest

import training_runs

pytestmark = pytest.mark.slow

# Minor page faults per call, after warm-up, of a jitted computation with 36 MB temporaries:
# by default glibc serves blocks this large (> its 32 MB mmap threshold cap) with mmap.
PROBE = '''
import resource, sys
from wavenet_jax import host_memory
if sys.argv[1] == 'retain':
  assert host_memory.retain_freed_host_memory()
import jax, jax.numpy as jnp

@jax.jit
def f(x):
  return jnp.sum(jnp.sin(x) @ jnp.cos(x))

x = jnp.ones((3072, 3072))
f(x).block_until_ready()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(2):
  f(x).block_until_ready()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 2)
'''


def _faults_per_call(mode: str) -> float:
  result = subprocess.run([sys.executable, '-c', PROBE, mode], env=training_runs.run_env(),
                          capture_output=True, text=True, timeout=120)
  assert result.returncode == 0, result.stderr[-3000:]
  return float(result.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='glibc malloc settings')
def test_retained_memory_is_reused_without_page_faults():
  default, retained = _faults_per_call('default'), _faults_per_call('retain')
  assert default > 1000, default  # The probe does allocate fresh memory by default.
  assert retained < 0.1 * default, (retained, default)
