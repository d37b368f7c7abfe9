"""Runs a script or module as if TensorFlow were not installed, and reports what it imported.

  python tests/tensorflow_guard.py [--installed] [--absent=NAMES] SCRIPT.py [ARGS...]
  python tests/tensorflow_guard.py [--installed] [--absent=NAMES] -m MODULE [ARGS...]

Without --installed, the packages of --absent (comma-separated top-level names; default
tensorflow, e.g. --absent=tensorflow,librosa) are made absent: `import tensorflow` raises
ModuleNotFoundError and `importlib.util.find_spec('tensorflow')` is None, as where it is not
installed (importlib.metadata still lists every installed distribution). With --installed
they stay importable, to check that the code does not import them anyway. At exit, if
TENSORFLOW_GUARD_REPORT names a file, the modules of those packages that were imported are
written there as a JSON list.
"""
import atexit
import importlib.abc
import json
import os
import runpy
import sys


class _WithoutPackages(importlib.abc.MetaPathFinder):
  """Wraps an import finder: finds nothing named NAME[.*] for NAME in `absent`, the rest as the
  finder does."""

  def __init__(self, finder, absent: frozenset[str]):
    self._finder = finder
    self._absent = absent

  def find_spec(self, name, path=None, target=None):
    if name.split('.')[0] in self._absent:
      return None
    return self._finder.find_spec(name, path, target)

  def find_distributions(self, *args, **kwargs):
    """The finder's installed distributions (importlib.metadata), the hidden ones' too."""
    if hasattr(self._finder, 'find_distributions'):
      return self._finder.find_distributions(*args, **kwargs)
    return iter(())

  def invalidate_caches(self):
    if hasattr(self._finder, 'invalidate_caches'):
      self._finder.invalidate_caches()


def _report(watched: frozenset[str]) -> None:
  path = os.environ.get('TENSORFLOW_GUARD_REPORT')
  if path:
    imported = sorted(name for name, module in sys.modules.items()
                      if module is not None and name.split('.')[0] in watched)
    with open(path, 'w') as f:
      json.dump(imported, f)


def main() -> None:
  args = sys.argv[1:]
  installed = False
  absent = frozenset({'tensorflow'})
  while args and args[0].startswith('--'):
    option = args.pop(0)
    if option == '--installed':
      installed = True
    elif option.startswith('--absent='):
      absent = frozenset(name for name in option.split('=', 1)[1].split(',') if name)
    else:
      sys.exit(f'tensorflow_guard.py: error: unknown option {option}')
  if not installed:
    sys.meta_path[:] = [_WithoutPackages(finder, absent) for finder in sys.meta_path]
  atexit.register(_report, absent)
  if args[0] == '-m':
    sys.argv = args[1:]
    runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)
  else:
    sys.argv = args
    sys.path.insert(0, os.path.dirname(os.path.abspath(args[0])))
    runpy.run_path(args[0], run_name='__main__')


if __name__ == '__main__':
  main()
