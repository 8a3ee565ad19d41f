"""vf.distribute: strategies by name, the chief, and VideoFlow training under tf.distribute.

Strategies over several devices need logical CPU devices or a cluster set up before
TensorFlow starts, so those tests run their TensorFlow in fresh processes.
"""
import json
import os
import socket
import subprocess
import sys
import textwrap
import types
from unittest import mock

import numpy as np
import pytest

import videoflow_tf  # noqa: F401  (before TensorFlow: imports it quietly)
import tensorflow as tf
import tensorflow_datasets as tfds

from videoflow_tf import cli, distribute
from videoflow_tf.datasets.stochastic_shapes import stochastic_shapes_dataset_builder as shapes

TWO_CPUS = """
    import videoflow_tf as vf
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
"""
STEPS = 5
LEARNING_RATE = 0.005


def run_python(*parts, timeout=240):
    """Runs the Python source made of `parts` (each dedented) in a fresh process; its stdout."""
    script = "".join(textwrap.dedent(part) for part in parts)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.fixture(scope="module")
def shapes_dir(tmp_path_factory):
    data_dir = str(tmp_path_factory.mktemp("shapes"))
    with mock.patch.object(shapes.Builder, "SPLIT_SIZES", {"train": 12, "test": 4}):
        # Two files per split: TFDS shards a split by files between workers.
        tfds.builder("stochastic_shapes", data_dir=data_dir).download_and_prepare(
            download_config=tfds.download.DownloadConfig(num_shards=2))
    return data_dir


# ------------------------------------------------------------------------ by name


def test_unknown_strategy_lists_the_choices():
    with pytest.raises(ValueError, match="unknown strategy 'gpus': expected one of default, "
                       "mirrored, multi_worker, tpu"):
        distribute.make_strategy("gpus")


def test_default_strategy_is_tensorflows_default():
    assert distribute.make_strategy("default") is tf.distribute.get_strategy()
    assert distribute.is_chief(distribute.make_strategy("default"))


@pytest.mark.parametrize("tf_config, message", [
    (None, "TF_CONFIG environment variable, which is not set"),
    ("{not json", "is not a valid cluster description"),
    ('{"cluster": {"worker": ["a:1"]}}', "is not a valid cluster description .KeyError: 'task'"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 1}}',
     "is not a valid cluster description .IndexError"),
])
def test_multi_worker_needs_a_valid_tf_config(monkeypatch, tf_config, message):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    if tf_config is not None:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(ValueError, match=message):
        distribute.make_strategy("multi_worker")


def test_tpu_strategy_without_a_tpu_is_a_clear_error():
    # Connecting to a cluster changes the process's TensorFlow context: a fresh process.
    out = run_python("""
        import os
        import videoflow_tf as vf
        os.environ.pop("TPU_NAME", None)
        try:
            vf.distribute.make_strategy("tpu")
        except RuntimeError as error:
            print(error)
    """, timeout=120)
    assert out.strip().splitlines()[-1].startswith("no TPU reachable at 'local' (")
    assert "set TPU_NAME to the TPU's name or grpc:// address" in out


def cluster_strategy(cluster, task_type, task_id):
    resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
        tf.train.ClusterSpec(cluster), task_type=task_type, task_id=task_id)
    return types.SimpleNamespace(cluster_resolver=resolver)


@pytest.mark.parametrize("cluster, task_type, task_id, chief", [
    ({"worker": ["a:1", "b:1"]}, "worker", 0, True),
    ({"worker": ["a:1", "b:1"]}, "worker", 1, False),
    ({"chief": ["c:1"], "worker": ["a:1", "b:1"]}, "chief", 0, True),
    ({"chief": ["c:1"], "worker": ["a:1", "b:1"]}, "worker", 0, False),
    ({"worker": ["a:1"], "evaluator": ["e:1"]}, "evaluator", 0, False),
])
def test_the_chief_is_the_chief_task_else_worker_0(cluster, task_type, task_id, chief):
    assert distribute.is_chief(cluster_strategy(cluster, task_type, task_id)) is chief


# ------------------------------------------------------------------------ inside a step


def test_global_batch_noise_does_not_depend_on_the_split_over_replicas():
    seed = tf.constant([7, 3])
    whole = distribute.global_batch_uniform([6, 2, 5, 3], seed)  # 30 values a row, not 4k
    assert whole.shape == (6, 2, 5, 3)
    assert 0.0 <= float(tf.reduce_min(whole)) and float(tf.reduce_max(whole)) < 1.0
    for replicas, rows in ((2, 3), (3, 2)):
        parts = []
        for replica in range(replicas):
            context = types.SimpleNamespace(replica_id_in_sync_group=replica)
            with mock.patch.object(tf.distribute, "get_replica_context", lambda: context):
                parts.append(distribute.global_batch_uniform([rows, 2, 5, 3], seed))
        np.testing.assert_array_equal(np.concatenate(parts), whole)
    other = distribute.global_batch_uniform([6, 2, 5, 3], tf.constant([7, 4]))
    assert np.mean(np.abs(other - whole)) > 0.2  # another seed, other values
    rows = whole.numpy().reshape(6, -1)
    assert abs(np.corrcoef(rows[0], rows[1])[0, 1]) < 0.5  # rows are not copies


# ------------------------------------------------------------------------ MirroredStrategy


def test_mirrored_training_matches_one_device_and_checkpoints_move_between_them(
        shapes_dir, tmp_path):
    """The tiny config on the same data and global batch 4: one device, then two replicas
    (2 + 2 videos). `fit` initialises both identically from their first batch; the losses
    and the final weights agree. A non-finite loss on one replica only skips the update on both.
    Checkpoints of either run restore under the other strategy with the same weights and
    likelihoods. Also: resumed distributed pipelines skip whole global batches, and
    `copy_first_replica` makes diverged replicas equal.

    SGD with momentum, not the paper's Adam: Adam's first steps are about lr * sign(g), so
    gradients that are zero up to rounding (the flat backgrounds make many) become steps of
    either sign and two correct runs drift apart at 1e-4 within a few steps. With SGD the
    runs differ by rounding only and a wrong gradient scale shows at once.
    """
    out = run_python(TWO_CPUS, f"LEARNING_RATE = {LEARNING_RATE}\n", f"""
        import json
        import keras
        import numpy as np
        from videoflow_tf.run_dir import make_checkpoint

        keras.utils.set_random_seed(0)  # the prior's initial kernels

        config = vf.get_config("tiny")
        data = dict(name="stochastic_shapes", split="train", config=config, training=True,
                    data_dir={shapes_dir!r}, seed=0)
        mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        poison = tf.Variable(False, trainable=False)  # NaN loss on replica 1 when set

        class Poisonable(vf.VideoFlow):
            def _bits_per_pixel(self, video, first, seed):
                bpp = super()._bits_per_pixel(video, first, seed)
                context = tf.distribute.get_replica_context()
                on_replica_1 = poison & tf.equal(context.replica_id_in_sync_group, 1)
                return tf.where(on_replica_1, float("nan"), bpp)

        def sgd():
            return keras.optimizers.SGD(learning_rate=LEARNING_RATE, momentum=0.9)

        def float_weights(model):
            return [w.numpy() for w in model.weights if w.dtype.startswith("float")]

        def train(model, make_data):
            # fit initialises the model from its data; then fresh pipelines, whose first
            # iterators see the same order (a second iterator of one reshuffles).
            model.fit(make_data(), epochs=0, verbose=0)
            initialised = float_weights(model)
            history = model.fit(make_data(), epochs={STEPS}, steps_per_epoch=1, verbose=0)
            return history.history["loss"], initialised, float_weights(model)

        single = vf.VideoFlow(config)
        single.compile(optimizer=sgd())
        initial = single.get_weights()  # the prior's kernels are not seeded: share them
        single_losses, single_initialised, single_weights = train(
            single, lambda: vf.data.make_dataset(batch_size=4, **data))
        with mirrored.scope():
            replicated = Poisonable(config)
            replicated.compile(optimizer=sgd())
            replicated.set_weights(initial)
        replicated_losses, replicated_initialised, replicated_weights = train(
            replicated,
            lambda: vf.data.distribute_dataset(mirrored, global_batch_size=4, **data))

        def replicas_agree(model):
            return all(np.array_equal(*[a.numpy() for a in
                                        mirrored.experimental_local_results(w.value)])
                       for w in model.weights)

        before = float_weights(replicated)
        poison.assign(True)
        stop = vf.callbacks.StopOnNonFiniteLoss()
        replicated.fit(vf.data.distribute_dataset(mirrored, global_batch_size=4, **data),
                       epochs=1, steps_per_epoch=1, verbose=0, callbacks=[stop])
        poison.assign(False)
        poisoned = dict(
            bad_step=stop.bad_step, iterations=int(replicated.optimizer.iterations.numpy()),
            unchanged=all(np.array_equal(a, b)
                          for a, b in zip(before, float_weights(replicated))),
            replicas_agree=replicas_agree(replicated))

        # Resuming skips the global batches of the steps done, on every replica.
        resumed = vf.data.distribute_dataset(mirrored, global_batch_size=4, skip_steps=2,
                                             **data)
        resumed_batch = np.concatenate([
            x.numpy() for x in mirrored.experimental_local_results(next(iter(resumed)))])
        skips_steps = np.array_equal(
            resumed_batch, next(iter(vf.data.make_dataset(batch_size=4, **data).skip(2))))

        # Replicas (workers) that initialised differently take replica 0's values.
        with mirrored.scope():
            diverged = tf.Variable([1.0, 2.0])
        for offset, component in enumerate(mirrored.experimental_local_results(diverged)):
            component.assign_add([10.0 * offset, 0.0])
        vf.distribute.copy_first_replica(mirrored, [diverged])
        copied = [x.numpy().tolist() for x in mirrored.experimental_local_results(diverged)]

        video = np.random.default_rng(0).integers(0, 256, (3, 4, 8, 8, 3), np.uint8)
        restored = {{}}
        for name, trained, strategy in (("mirrored_to_default", replicated,
                                         tf.distribute.get_strategy()),
                                        ("default_to_mirrored", single, mirrored)):
            path = make_checkpoint(trained, trained.optimizer).save("{tmp_path}/" + name)
            with strategy.scope():
                fresh = vf.VideoFlow(config)
                fresh.compile(optimizer=sgd())
                fresh.optimizer.build(fresh.trainable_variables)
            make_checkpoint(fresh, fresh.optimizer).restore(path).assert_consumed()
            restored[name] = dict(
                same_weights=all(np.array_equal(a.numpy(), b.numpy())
                                 for a, b in zip(trained.weights, fresh.weights)),
                replicas_agree=replicas_agree(fresh) if strategy is mirrored else True,
                iterations=int(fresh.optimizer.iterations.numpy()),
                same_log_prob=np.array_equal(trained.log_prob(video, seed=1),
                                             fresh.log_prob(video, seed=1)))

        print(json.dumps(dict(
            single_losses=single_losses, replicated_losses=replicated_losses,
            same_initialisation=all(np.array_equal(a, b) for a, b in
                                    zip(single_initialised, replicated_initialised)),
            weight_difference=max(float(np.max(np.abs(a - b)))
                                  for a, b in zip(single_weights, replicated_weights)),
            poisoned=poisoned, restored=restored, skips_steps=skips_steps, copied=copied)))
    """)
    result = json.loads(out.strip().splitlines()[-1])
    single, replicated = np.array(result["single_losses"]), np.array(result["replicated_losses"])
    assert np.isfinite(single).all() and len(single) == STEPS
    assert len(set(single)) == STEPS  # every step its own batch and update
    # Only float rounding differs (two half-batch sums, then an all-reduce): measured
    # below 1e-7 relative in the losses and 2e-7 in the weights. Unscaled replica gradients
    # (a doubled step) moved the second loss by 3e-3 relative.
    assert result["same_initialisation"]
    np.testing.assert_allclose(replicated, single, rtol=1e-5, atol=0)
    assert result["weight_difference"] < 2e-5, result
    assert result["poisoned"] == dict(bad_step=STEPS + 1, iterations=STEPS, unchanged=True,
                                      replicas_agree=True), result
    assert result["skips_steps"]
    assert result["copied"] == [[1.0, 2.0], [1.0, 2.0]]
    for name, checks in result["restored"].items():
        assert checks == dict(same_weights=True, replicas_agree=True, iterations=STEPS,
                              same_log_prob=True), (name, checks)


def test_gradient_clipping_caps_the_global_batch_gradient_under_mirrored(shapes_dir):
    """`gradient_clip_norm` rescales the gradient of the global batch, not each replica's
    share: with SGD (no momentum) and a cap below the gradient's norm, one update moves
    the weights by lr * cap on one device and on two replicas, and to the same weights.
    Keras' own `global_clipnorm` (each replica's share clipped, then summed) moved them
    1.36 times as far on two replicas."""
    out = run_python(TWO_CPUS, f"LEARNING_RATE = {LEARNING_RATE}\n", f"""
        import json
        import keras
        import numpy as np

        CAP = 0.1
        keras.utils.set_random_seed(0)
        config = vf.get_config("tiny").replace(gradient_clip_norm=CAP)
        data = dict(name="stochastic_shapes", split="train", config=config, training=True,
                    data_dir={shapes_dir!r}, seed=0)
        mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])

        def sgd():
            return keras.optimizers.SGD(learning_rate=LEARNING_RATE)

        def one_update(model, make_data):
            model.fit(make_data(), epochs=0, verbose=0)  # initialise from the data
            before = [w.numpy() for w in model.trainable_weights]
            model.fit(make_data(), epochs=1, steps_per_epoch=1, verbose=0)
            after = [w.numpy() for w in model.trainable_weights]
            moved = float(np.sqrt(sum(np.sum((a - b) ** 2) for a, b in zip(after, before))))
            return moved, after

        single = vf.VideoFlow(config)
        single.compile(optimizer=sgd())
        initial = single.get_weights()
        single_moved, single_after = one_update(
            single, lambda: vf.data.make_dataset(batch_size=4, **data))
        with mirrored.scope():
            replicated = vf.VideoFlow(config)
            replicated.compile(optimizer=sgd())
            replicated.set_weights(initial)
        replicated_moved, replicated_after = one_update(
            replicated, lambda: vf.data.distribute_dataset(mirrored, global_batch_size=4,
                                                           **data))
        print(json.dumps(dict(
            step=LEARNING_RATE * CAP, single_moved=single_moved,
            replicated_moved=replicated_moved,
            weight_difference=max(float(np.max(np.abs(a - b)))
                                  for a, b in zip(single_after, replicated_after)))))
    """)
    result = json.loads(out.strip().splitlines()[-1])
    np.testing.assert_allclose(result["single_moved"], result["step"], rtol=1e-3)
    np.testing.assert_allclose(result["replicated_moved"], result["step"], rtol=1e-3)
    assert result["weight_difference"] < 1e-7, result


# ------------------------------------------------------------------------ MultiWorkerMirrored


WORKER = """
    import json, os, sys
    import numpy as np
    import videoflow_tf as vf
    from videoflow_tf import train

    data_dir, model_dir, out = sys.argv[1:]
    result = train.train(vf.get_config("tiny"), None, model_dir, 3, data_dir=data_dir,
                         strategy="multi_worker", checkpoint_every_steps=2, steps_per_epoch=3,
                         summary_every=1, sample_every=0, verbose=0)
    index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    np.savez(os.path.join(out, f"worker{index}.npz"),
             *[w.numpy() for w in result.model.weights])
    strategy = result.model.distribute_strategy
    print(json.dumps(dict(chief=vf.distribute.is_chief(strategy), step=result.step,
                          replicas=strategy.num_replicas_in_sync,
                          checkpoint=result.checkpoint,
                          losses=result.history.history["loss"])))
"""


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_workers_train_identically_and_only_the_chief_writes(shapes_dir, tmp_path,
                                                                  capsys):
    """`vf.train.train(strategy="multi_worker")` in two processes on 127.0.0.1 (each its own
    TFDS shard): both end with the same weights, the chief's last checkpoint; only the chief
    writes checkpoints and logs, the other's scratch folder is gone. The run then resumes
    under the default strategy from the command line."""
    model_dir, out, scratch = tmp_path / "run", tmp_path / "out", tmp_path / "scratch"
    out.mkdir()
    scratch.mkdir()
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    processes = []
    for index in range(2):
        env = dict(os.environ, TMPDIR=str(scratch), TF_CONFIG=json.dumps(
            {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}))
        processes.append(subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(WORKER), shapes_dir, str(model_dir),
             str(out)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = []
    try:
        for process in processes:
            stdout, stderr = process.communicate(timeout=300)
            assert process.returncode == 0, stderr[-3000:]
            outputs.append(json.loads(stdout.strip().splitlines()[-1]))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()
    checkpoints = model_dir / "checkpoints"
    assert [output["chief"] for output in outputs] == [True, False]
    assert [output["checkpoint"] for output in outputs] == [str(checkpoints / "ckpt-3"), None]
    for output in outputs:
        assert output["replicas"] == 2 and output["step"] == 3
        assert np.isfinite(output["losses"]).all()
    assert outputs[0]["losses"] == outputs[1]["losses"]  # logs are all-reduced
    weights = [np.load(out / f"worker{index}.npz") for index in range(2)]
    assert len(weights[0].files) == len(weights[1].files) > 50
    for name in weights[0].files:
        np.testing.assert_array_equal(weights[0][name], weights[1][name], err_msg=name)
    saved = tf.train.load_checkpoint(str(checkpoints / "ckpt-3"))
    for index, name in enumerate(weights[0].files):
        np.testing.assert_array_equal(
            saved.get_tensor(f"weights/{index}/.ATTRIBUTES/VARIABLE_VALUE"), weights[0][name])
    assert sorted(os.listdir(model_dir)) == ["checkpoints", "config.json", "logs",
                                             "monitor.jsonl", "training.json"]
    assert len(os.listdir(model_dir / "logs" / "train")) == 1  # the chief's event file
    assert os.listdir(scratch) == []

    assert cli.main(["train", "--model-dir", str(model_dir), "--data-dir", shapes_dir,
                     "--steps", "4", "--sample-every", "0", "--verbose", "0"]) == 0
    assert "at step 3 of 4" in capsys.readouterr().out
    assert tf.train.latest_checkpoint(str(checkpoints)).endswith("ckpt-4")


def test_the_command_line_checks_the_strategy(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    args = ["train", "--config", "tiny", "--model-dir", str(tmp_path / "run"), "--steps", "1"]
    assert cli.main(args + ["--strategy", "gpus"]) == 2
    assert ("invalid choice: 'gpus' (choose from 'default', 'mirrored', 'multi_worker', "
            "'tpu')") in capsys.readouterr().err
    assert cli.main(args + ["--strategy", "multi_worker"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("videoflow-tf train: error: the multi_worker strategy reads the "
                            "cluster from the TF_CONFIG environment variable, which is not set")
    assert len(error.splitlines()) == 1
    assert not os.path.exists(tmp_path / "run")
