"""Training on several devices or machines with `tf.distribute`.

`make_strategy(name)` returns the strategy of a `--strategy` name:

* `default`: one device (TensorFlow's default strategy);
* `mirrored`: every GPU of this machine (`MirroredStrategy`; the CPU if there is none);
* `multi_worker`: every device of every worker listed in the `TF_CONFIG` environment
  variable (`MultiWorkerMirroredStrategy`); each worker runs the same program;
* `tpu`: the TPU named by `TPU_NAME` (a name or grpc:// address), else this TPU VM's own.

Create the model (and so its optimizer, metrics and data-dependent initialisation) under
`strategy.scope()`; `VideoFlow.fit` then runs under it. The batch size is the global one,
split evenly over the replicas (`vf.data.distribute_dataset`), and each update applies the
mean gradient of the global batch, as one device with that batch would. `is_chief` says
which worker writes checkpoints and logs.

The other functions are what `VideoFlow` needs to behave the same under any strategy:
dequantisation noise that does not depend on how a batch is split, updates that every
replica applies or skips together, gradient clipping by the global batch's gradient, and
one data-dependent initialisation for all workers.
"""
import json
import os

import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")
_PHILOX = tf.random.Algorithm.PHILOX.value
_PHILOX_VALUES_PER_COUNTER = 4  # one counter step gives four 32-bit random values


def make_strategy(name):
    """The `tf.distribute.Strategy` called `name`, one of STRATEGIES (see the module)."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        _check_tf_config()
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        return _tpu_strategy(os.environ.get("TPU_NAME") or "local")
    raise ValueError(f"unknown strategy {name!r}: expected one of {', '.join(STRATEGIES)}")


def is_chief(strategy):
    """Whether this process writes checkpoints and logs: the `chief` task of TF_CONFIG, or
    worker 0 when the cluster has no chief; always True outside a multi-worker cluster."""
    resolver = getattr(strategy, "cluster_resolver", None)
    task_type = getattr(resolver, "task_type", None)
    if task_type is None:
        return True
    if task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "worker" and resolver.task_id == 0 and not has_chief


def _check_tf_config():
    text = os.environ.get("TF_CONFIG")
    example = ('e.g. {"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
               '"task": {"type": "worker", "index": 0}}')
    if not text:
        raise ValueError("the multi_worker strategy reads the cluster from the TF_CONFIG "
                         f"environment variable, which is not set; expected JSON, {example} "
                         "(one machine: use the mirrored strategy)")
    try:
        tf_config = json.loads(text)
        cluster, task = tf_config["cluster"], tf_config["task"]
        task_type, index = task["type"], task["index"]
        if not 0 <= index < len(cluster[task_type]):
            raise IndexError(index)
    except (ValueError, KeyError, TypeError, IndexError) as error:
        raise ValueError(f"TF_CONFIG {text!r} is not a valid cluster description "
                         f"({type(error).__name__}: {error}); expected {example}") from None


def _tpu_strategy(tpu):
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, tf.errors.OpError) as error:
        first_line = str(error).strip().splitlines()[0]
        raise RuntimeError(
            f"no TPU reachable at {tpu!r} ({type(error).__name__}: {first_line}); set "
            "TPU_NAME to the TPU's name or grpc:// address, or run on a TPU VM") from None
    return tf.distribute.TPUStrategy(resolver)


# --------------------------------------------------------------------- inside a step


def global_batch_uniform(shape, seed, minval=0.0, maxval=1.0):
    """Uniform float32 values of `shape` [rows, ...] for this replica's rows of a batch.

    The values of the whole global batch are one counter-based (Philox) stream keyed by
    `seed` (int32 [2]), row after row; replica k of rows-per-replica R draws rows
    [k R, (k + 1) R) by starting the counter there. So a global batch gets the same values
    whether one device draws them all or N replicas draw R = B / N rows each (replicas
    must have equal batches, as `vf.data.distribute_dataset` gives them). Outside a replica
    context this is replica 0.
    """
    shape = tf.cast(shape, tf.int64)
    rows, row_size = shape[0], tf.reduce_prod(shape[1:])
    counters_per_row = -(-row_size // _PHILOX_VALUES_PER_COUNTER)  # rows start on a counter
    context = tf.distribute.get_replica_context()
    replica = 0 if context is None else context.replica_id_in_sync_group
    first_counter = tf.cast(replica, tf.int64) * rows * counters_per_row
    key = tf.reshape(tf.bitcast(tf.cast(seed, tf.int32), tf.uint64), [1])
    counter = tf.stack([tf.cast(first_counter, tf.uint64), tf.constant(0, tf.uint64)])
    values = tf.raw_ops.StatelessRandomUniformV2(
        shape=tf.stack([rows, counters_per_row * _PHILOX_VALUES_PER_COUNTER]), key=key,
        counter=counter, alg=_PHILOX)
    values = tf.reshape(values[:, :row_size], shape)
    return minval + (maxval - minval) * values


def all_replicas(flag):
    """True on every replica iff `flag` (a boolean scalar) is True on every replica."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return flag
    failures = context.all_reduce(tf.distribute.ReduceOp.SUM,
                                  tf.cast(tf.logical_not(flag), tf.float32))
    return tf.equal(failures, 0.0)


def clip_by_global_norm(grads, clip_norm):
    """This replica's gradients `grads` scaled by min(1, clip_norm / |g|), where g is the
    sum of every replica's `grads` (the gradient the optimizer applies) and |g| its global
    norm; the same scale on every replica, so the sum is g clipped to `clip_norm`.

    Not the optimizer's `global_clipnorm`: Keras clips each replica's share before the
    replicas' gradients are summed (tensorflow/tensorflow#33929), so N replicas could step
    up to N times as far as one device with the same batch.
    """
    context = tf.distribute.get_replica_context()
    summed = grads
    if context is not None and context.num_replicas_in_sync > 1:
        summed = context.all_reduce(tf.distribute.ReduceOp.SUM, grads)
    # Not tf.clip_by_global_norm(grads, clip_norm, use_norm=|g|): a norm that overflows to
    # inf makes it return NaN, which `apply_if`'s check (on the unclipped gradients) would
    # let through; here the scale is 0 then (and 1 for |g| = 0).
    scale = tf.minimum(1.0, clip_norm / tf.linalg.global_norm(summed))
    return [grad * scale for grad in grads]


def apply_if(flag, apply, *args):
    """Calls `apply(*args)` on every replica iff `flag`, the same on every replica (see
    `all_replicas`). `apply` may synchronise replicas (an optimizer's update does).

    MirroredStrategy and MultiWorkerMirroredStrategy (unless XLA-compiled on GPUs)
    synchronise through `merge_call`, which a `tf.cond` in a replica may not contain; there
    the condition is taken in cross-replica context and `apply` runs on every replica from
    inside it. `args` are per-replica values.
    """
    def skip():
        return tf.constant(False)

    if tf.__internal__.distribute.strategy_supports_no_merge_call():
        def run():
            apply(*args)
            return tf.constant(True)

        return tf.cond(flag, run, skip)

    def in_cross_replica_context(strategy, flag, *args):
        def run():
            strategy.extended.call_for_each_replica(apply, args=args)
            return tf.constant(True)

        return tf.cond(strategy.experimental_local_results(flag)[0], run, skip)

    return tf.distribute.get_replica_context().merge_call(in_cross_replica_context,
                                                          args=(flag,) + args)


def keras_logs(logs):
    """`logs` (scalars) in the shape Keras can reduce over this strategy's replicas.

    Keras 3.15 reduces every log of a multi-worker MultiWorkerMirroredStrategy with
    `strategy.reduce(MEAN, value, axis=0)`, which fails on scalars
    (tensorflow/tensorflow#72388): there they become [1] and come out of the reduction
    as the scalar mean over all replicas.
    """
    strategy = tf.distribute.get_strategy()
    several_workers = (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
                       and strategy.num_replicas_in_sync > len(strategy.extended.worker_devices))
    if not several_workers:
        return logs
    return {name: tf.reshape(value, [1]) for name, value in logs.items()}


def copy_first_replica(strategy, variables):
    """Gives every replica, on every worker, replica 0's values of `variables` (floating
    point, from `strategy.scope()`); called by every worker, eagerly, in cross-replica
    context. Used after a data-dependent initialisation that may have seen other data
    (or other rounding) on other workers."""
    variables = [v for v in variables if tf.as_dtype(v.dtype).is_floating]
    if strategy.num_replicas_in_sync == 1 or not variables:
        return
    for variable, value in zip(variables, _replica_sums(strategy, variables, first_only=True)):
        variable.assign(value)


def same_on_all_workers(strategy, value):
    """Whether the number `value`, given by every worker (each calls this, eagerly), is
    the same on all of them."""
    if strategy.num_replicas_in_sync == 1:
        return True
    value = tf.constant(value, tf.float64)
    first = _replica_sums(strategy, [value], first_only=True)[0]
    disagreeing = _replica_sums(strategy, [tf.cast(value != first, tf.float64)])[0]
    return float(disagreeing) == 0.0


def _replica_sums(strategy, values, first_only=False):
    """The sums over all replicas of `values` (tensors or variables, read on each
    replica); with `first_only`, replica 0's values (the others add zeros)."""
    @tf.function
    def all_reduce():
        def replica_fn():
            context = tf.distribute.get_replica_context()
            mine = [tf.convert_to_tensor(v) for v in values]
            if first_only:
                first = tf.equal(context.replica_id_in_sync_group, 0)
                mine = [tf.where(first, v, tf.zeros_like(v)) for v in mine]
            return context.all_reduce(tf.distribute.ReduceOp.SUM, mine)

        return strategy.run(replica_fn)

    return strategy.experimental_local_results(all_reduce())[0]
