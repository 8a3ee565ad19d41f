"""The paper's optimiser (Adam with a linear learning-rate warm-up and no decay), an
optional cosine decay after the warm-up, and how a training step applies its gradients."""
import keras
import tensorflow as tf

from videoflow_tf.model import distribute


@keras.saving.register_keras_serializable(package="videoflow_tf")
class LinearWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """lr(step) = peak * min(1, (step + 1) / warmup_steps), constant after the warm-up.

    `step` counts finished updates, so the first update uses peak / warmup_steps and
    update number `warmup_steps` is the first at the peak; warmup_steps = 0 is constant.
    """

    def __init__(self, peak_learning_rate, warmup_steps):
        self.peak_learning_rate = float(peak_learning_rate)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        peak = keras.ops.convert_to_tensor(self.peak_learning_rate, "float32")
        if self.warmup_steps == 0:
            return peak
        progress = (keras.ops.cast(step, "float32") + 1.0) / float(self.warmup_steps)
        return peak * keras.ops.minimum(1.0, progress)

    def get_config(self):
        return {"peak_learning_rate": self.peak_learning_rate,
                "warmup_steps": self.warmup_steps}


def make_optimizer(config):
    """Adam(beta_1=0.85, beta_2=0.997, epsilon=1e-6) warming up linearly to
    `config.learning_rate` over `config.warmup_steps` updates (tensor2tensor's), then
    constant or, with `config.cosine_decay_steps`, decaying as Keras' CosineDecay to
    `config.cosine_decay_floor` of it; without clipping: `VideoFlow.train_step` applies
    `config.gradient_clip_norm` itself, to the gradient summed over replicas."""
    if config.cosine_decay_steps:
        peak, warmup = config.learning_rate, config.warmup_steps
        schedule = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=peak / max(warmup, 1) if warmup else peak,
            decay_steps=config.cosine_decay_steps, alpha=config.cosine_decay_floor,
            warmup_target=peak if warmup else None, warmup_steps=warmup)
    else:
        schedule = LinearWarmup(config.learning_rate, config.warmup_steps)
    return keras.optimizers.Adam(learning_rate=schedule, beta_1=0.85, beta_2=0.997,
                                 epsilon=1e-6)


def slot_variables(optimizer, variable):
    """The variables in which `optimizer` keeps its per-element state of `variable` (Adam's
    momentum and velocity, named after the variable's path by Keras'
    `add_variable_from_reference`); [] for None or an optimizer not built yet."""
    if optimizer is None:
        return []
    prefix = variable.path.replace("/", "_") + "_"
    return [slot for slot in optimizer.variables
            if slot.name.startswith(prefix) and tuple(slot.shape) == tuple(variable.shape)]


def apply_finite_gradients(optimizer, loss, gradients, variables, clip_norm=None):
    """Applies `gradients` (None for variables the loss does not reach) to `variables`
    with `optimizer`, after clipping their global norm to `clip_norm` (None: no clipping),
    only if the loss and every gradient are finite on every replica; otherwise the
    weights stay those of the last good step (StopOnNonFiniteLoss then stops training).

    Under a strategy, call it in the replica context with each replica's share of the
    summed gradient: the clipping then sees the global batch's gradient (the optimizer's
    own clipping would clip each replica's share), and the replicas agree on the
    finiteness check, so they apply or skip an update together.
    """
    pairs = [(gradient, variable) for gradient, variable in zip(gradients, variables)
             if gradient is not None]
    finite = distribute.all_replicas(tf.reduce_all([tf.math.is_finite(loss)] + [
        tf.reduce_all(tf.math.is_finite(gradient)) for gradient, _ in pairs]))
    gradients = [gradient for gradient, _ in pairs]
    if clip_norm is not None:
        gradients = distribute.clip_by_global_norm(gradients, clip_norm)
    distribute.apply_if(finite, optimizer.apply, gradients, [v for _, v in pairs])
