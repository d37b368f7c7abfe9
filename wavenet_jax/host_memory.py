"""Keeps freed host memory in the process (glibc malloc settings) for XLA:CPU runs.

XLA's CPU runtime allocates every execution's temporary buffer with malloc and frees
it afterwards (a B1 train step: one 1.2 GB block). glibc serves blocks that large
with a fresh mmap, from the arena of the XLA worker thread that asks, and unmaps them
on free, so every step page-faults and zeroes the whole buffer again: on a 2-core
x86 CPU, hundreds of thousands of minor page faults per B1 step.
`retain_freed_host_memory` makes glibc keep such blocks: one malloc arena (the main
heap, grown with brk), no mmap for large blocks, no trimming of the heap top. Freed
blocks are then reused by the next step without page faults (figures: docs/performance.md,
experiments/benchmarks/train_step.py). The price:
the process keeps its peak host memory, and all threads share one malloc arena.

Call it before JAX runs its first computation: threads created earlier keep their
own arenas.
"""
import ctypes
import sys

# mallopt parameters (glibc malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8
_INT_MAX = 2**31 - 1


def retain_freed_host_memory() -> bool:
  """Sets glibc malloc to keep freed memory; returns False (and changes nothing) without glibc."""
  if not sys.platform.startswith('linux'):
    return False
  try:
    mallopt = ctypes.CDLL('libc.so.6').mallopt
  except (OSError, AttributeError):
    return False
  return all(mallopt(parameter, value) == 1 for parameter, value in (
      (_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, _INT_MAX)))
