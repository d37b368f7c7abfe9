"""Runs a script or module as if TensorFlow were not installed, and reports what it imported.

  python tests/tensorflow_guard.py [--installed] SCRIPT.py [ARGS...]
  python tests/tensorflow_guard.py [--installed] -m MODULE [ARGS...]

Without --installed, TensorFlow is made absent: `import tensorflow` raises
ModuleNotFoundError and `importlib.util.find_spec('tensorflow')` is None, as where it is not
installed. With --installed it stays importable, to check that the code does not import it
anyway. At exit, if TENSORFLOW_GUARD_REPORT names a file, the TensorFlow modules that were
imported are written there as a JSON list.
"""
import atexit
import importlib.abc
import json
import os
import runpy
import sys


class _WithoutTensorFlow(importlib.abc.MetaPathFinder):
  """Wraps an import finder: finds nothing named tensorflow[.*], the rest as the finder does."""

  def __init__(self, finder):
    self._finder = finder

  def find_spec(self, name, path=None, target=None):
    if name.split('.')[0] == 'tensorflow':
      return None
    return self._finder.find_spec(name, path, target)

  def invalidate_caches(self):
    if hasattr(self._finder, 'invalidate_caches'):
      self._finder.invalidate_caches()


def _report() -> None:
  path = os.environ.get('TENSORFLOW_GUARD_REPORT')
  if path:
    imported = sorted(name for name, module in sys.modules.items()
                      if module is not None and name.split('.')[0] == 'tensorflow')
    with open(path, 'w') as f:
      json.dump(imported, f)


def main() -> None:
  args = sys.argv[1:]
  if args[0] == '--installed':
    args = args[1:]
  else:
    sys.meta_path[:] = [_WithoutTensorFlow(finder) for finder in sys.meta_path]
  atexit.register(_report)
  if args[0] == '-m':
    sys.argv = args[1:]
    runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)
  else:
    sys.argv = args
    sys.path.insert(0, os.path.dirname(os.path.abspath(args[0])))
    runpy.run_path(args[0], run_name='__main__')


if __name__ == '__main__':
  main()
