"""Local paths and cloud URLs (gs://bucket/run): which is which, and what a URL needs.

Workdirs (orbax checkpoints, TensorBoard summaries, training clips) and sample.py's outputs
may be gs:// URLs. Without TensorFlow, etils.epath reaches them through gcsfs and tensorboardX
through google-cloud-storage: the 'gcs' extra. Prepared datasets are ArrayRecord files, which
are read and written on a local disk only.
"""
import importlib.util
import os
import secrets

from etils import epath

# The modules that gs:// needs without TensorFlow: etils.epath's file system and
# tensorboardX's event-file writer. Orbax's arrays go through TensorStore's own driver.
_GCS_MODULES = ('gcsfs', 'google.cloud.storage')
GCS_INSTALL = ("pip install 'wavenet-jax[gcs]' (or pip install -r requirements-gcs.txt; "
               'launch/tpu_vm.sh setup installs it)')


def is_remote(path: str | os.PathLike) -> bool:
  """True for a URL such as gs://bucket/run, False for a local path (relative or absolute)."""
  return '://' in os.fspath(path)


def _installed(module: str) -> bool:
  try:
    return importlib.util.find_spec(module) is not None
  except ModuleNotFoundError:  # A missing parent package (google.cloud).
    return False


def check_remote_support(path: str | os.PathLike, setting: str) -> None:
  """Raises a one-line ValueError naming `setting` if `path` is gs:// and the extra is missing.

  Args:
    path: a local path or a URL.
    setting: what the user typed it as, e.g. '--workdir' or 'config.data.data_dir'.
  """
  path = os.fspath(path)
  if not path.startswith('gs://'):
    return
  missing = [module for module in _GCS_MODULES if not _installed(module)]
  if missing:
    raise ValueError(f"{setting}={path}: gs:// needs the 'gcs' extra ({', '.join(missing)} "
                     f'not installed): {GCS_INSTALL}.')


def check_local(path: str | os.PathLike | None, setting: str) -> None:
  """Raises a one-line ValueError naming `setting` if `path` is a URL (ArrayRecord data)."""
  if path and is_remote(path):
    raise ValueError(f'{setting}={os.fspath(path)}: prepared datasets must be on a local disk '
                     '(ArrayRecord reads and writes local files only); use a local folder, '
                     'e.g. the default ~/tensorflow_datasets, on every host.')


def write_whole(path: str | os.PathLike, data: bytes) -> None:
  """Writes data to path whole or not at all (a full disk leaves no truncated file).

  A local file is written beside its path under a temporary name, then renamed into place
  (atomic: readers see the old file or the new one; a failed write removes it). A URL's
  object is one upload, which lands whole or not at all. The folder is created.

  Raises:
    OSError: the write failed; path is as it was.
  """
  path = epath.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  if is_remote(path):
    path.write_bytes(data)
    return
  temporary = path.parent / f'.{path.name}.{secrets.token_hex(4)}.tmp'
  # os.open, not tempfile: the file gets the mode (umask) that a plain open would give it.
  descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
  try:
    with os.fdopen(descriptor, 'wb') as file:
      file.write(data)
    os.replace(temporary, path)
  except BaseException:
    temporary.unlink(missing_ok=True)
    raise
