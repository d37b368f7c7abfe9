"""TensorBoard summaries written without TensorFlow (tensorboardX event files).

Tags a training run writes: 'train/loss', 'train/bits_per_sample', 'train/grad_norm',
'train/learning_rate', 'train/steps_per_s', 'train/samples_per_s', 'eval/bits_per_sample',
'eval/mulaw_bits_per_sample' (scalars) and 'generated' (audio clips); `read_scalars` reads
the scalars back.
"""
from typing import Optional

import numpy as np
import tensorboardX


class SummaryWriter:
  """Scalars and audio for TensorBoard, or nothing at all (the non-chief processes).

  Args:
    logdir: the folder of the event files; None: a writer that writes nothing, so that
      every process of a multi-host run can call it unconditionally.
  """

  def __init__(self, logdir: Optional[str]):
    self._writer = None
    if logdir is not None:
      self._writer = tensorboardX.SummaryWriter(logdir, flush_secs=30)

  def scalar(self, tag: str, value: float, step: int) -> None:
    if self._writer is not None:
      self._writer.add_scalar(tag, float(value), step)

  def audio(self, tag: str, waveform: np.ndarray, step: int, sample_rate: int) -> None:
    """Adds a clip: waveform float32 [time] in [-1, 1] (clipped)."""
    if self._writer is not None:
      clipped = np.clip(np.asarray(waveform, np.float32), -1.0, 1.0)
      self._writer.add_audio(tag, clipped, step, sample_rate=sample_rate)

  def flush(self) -> None:
    if self._writer is not None:
      self._writer.flush()

  def close(self) -> None:
    if self._writer is not None:
      self._writer.close()


def read_scalars(logdir: str) -> dict[str, list[tuple[float, int, float]]]:
  """Every scalar of the event files in `logdir`: tag -> [(wall time, step, value)] in order.

  Read with TensorBoard's own event reader (imported here: only reports read logs back).
  """
  # pylint: disable-next=g-import-not-at-top
  from tensorboard.backend.event_processing import event_accumulator
  events = event_accumulator.EventAccumulator(logdir, size_guidance={'scalars': 0})
  events.Reload()
  return {tag: [(scalar.wall_time, scalar.step, scalar.value) for scalar in events.Scalars(tag)]
          for tag in events.Tags()['scalars']}
