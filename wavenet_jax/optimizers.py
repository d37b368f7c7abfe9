"""The optimizer of a run and its learning-rate schedule, from config.train."""
import ml_collections
import optax


def create_learning_rate_fn(train_config: ml_collections.ConfigDict) -> optax.Schedule:
  """Linear warmup from 0 to learning_rate (if warmup_steps > 0), then cosine decay to 0 or
  constant."""
  peak = train_config.learning_rate
  warmup_steps = int(train_config.warmup_steps)
  if train_config.decay == 'cosine':
    after = optax.cosine_decay_schedule(peak, max(train_config.num_steps - warmup_steps, 1))
  elif train_config.decay == 'constant':
    after = optax.constant_schedule(peak)
  else:
    raise ValueError(f"config.train.decay must be 'cosine' or 'constant', "
                     f'got {train_config.decay!r}.')
  if warmup_steps <= 0:
    return after
  warmup = optax.linear_schedule(0.0, peak, warmup_steps)
  return optax.join_schedules([warmup, after], [warmup_steps])


def create_optimizer(train_config: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """AdamW on the learning-rate schedule, after clipping the gradients' global norm."""
  return optax.chain(
      optax.clip_by_global_norm(train_config.grad_clip_norm),
      optax.adamw(create_learning_rate_fn(train_config),
                  weight_decay=train_config.weight_decay))
