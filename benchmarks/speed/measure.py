"""What the speed scripts share: a measurement run in a fresh Python of its own (so that
peak memories do not mix), reporting one JSON line, and timed calls of Keras's training
function (fit's path).

    child:   report(result)                  prints "RESULT {json}"
    parent:  run_child([script, args...])    -> that dict, or {"error": stderr's last lines}
"""
import json
import os
import subprocess
import sys
import time

RESULT = "RESULT "


def report(result):
    """Prints `result` as the child's one result line."""
    print(RESULT + json.dumps(result), flush=True)


def run_child(arguments):
    """Runs `python ARGUMENTS...` with this Python and returns the dict its last result
    line holds, or {"error": [its last lines of stderr]} if it failed or reported none."""
    completed = subprocess.run([sys.executable, *arguments], capture_output=True, text=True)
    lines = [line for line in completed.stdout.splitlines() if line.startswith(RESULT)]
    if completed.returncode or not lines:
        return {"error": completed.stderr.strip().splitlines()[-3:]}
    return json.loads(lines[-1][len(RESULT):])


def train_function(model, videos, jit=False):
    """(Keras's train function, an iterator repeating uint8 `videos`) for an initialised
    `model`, compiled with its config's optimizer (XLA if `jit`)."""
    import tensorflow as tf
    from videoflow_tf import make_optimizer

    model.compile(optimizer=make_optimizer(model.config), jit_compile=jit)
    model.optimizer.build(model.trainable_variables)
    model.make_train_function(force=True)
    return model.train_function, iter(tf.data.Dataset.from_tensors(videos).repeat())


def tensor_peak_mib(function, argument):
    """TensorFlow's peak bytes of tensors (MiB) during one more call of `function`."""
    import tensorflow as tf
    tf.config.experimental.reset_memory_stats("CPU:0")
    sync(function(argument))
    return tf.config.experimental.get_memory_info("CPU:0")["peak"] / 2 ** 20


def best_of(function, argument, repeats):
    """(first call s, best wall s, best CPU s, load average) of calling function."""
    start = time.perf_counter()
    sync(function(argument))
    first = time.perf_counter() - start
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        sync(function(argument))
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return first, min(walls), min(cpus), os.getloadavg()[0]


def sync(result):
    """Waits for every tensor of `result`."""
    import tensorflow as tf
    for value in tf.nest.flatten(result):
        if hasattr(value, "numpy"):
            value.numpy()
