"""The paper's optimiser: Adam with a linear learning-rate warm-up and no decay."""
import keras


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
    `config.learning_rate` over `config.warmup_steps` updates (tensor2tensor's), without
    clipping: `VideoFlow.train_step` applies `config.gradient_clip_norm` itself, to the
    gradient summed over replicas."""
    schedule = LinearWarmup(config.learning_rate, config.warmup_steps)
    return keras.optimizers.Adam(learning_rate=schedule, beta_1=0.85, beta_2=0.997,
                                 epsilon=1e-6)
