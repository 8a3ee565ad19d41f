"""vf.distribute: strategies by name, the chief, and VideoFlow training under tf.distribute.

Strategies over several devices need logical CPU devices or a cluster set up before
TensorFlow starts, so those tests run their TensorFlow in fresh processes.
"""
import json
import os
import socket
import subprocess
import sys
import types
from unittest import mock

import numpy as np
import pytest

import videoflow_tf  # noqa: F401  (before TensorFlow: imports it quietly)
import tensorflow as tf

from helpers import run_script, script
from videoflow_tf.commands import cli
from videoflow_tf.model import distribute

STEPS = 5
LEARNING_RATE = 0.005


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
    out = run_script("no_tpu.py", timeout=120)
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
        shapes_data_dir, tmp_path):
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
    out = run_script("mirrored_training.py", shapes_data_dir, tmp_path, STEPS, LEARNING_RATE)
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


def test_gradient_clipping_caps_the_global_batch_gradient_under_mirrored(shapes_data_dir):
    """`gradient_clip_norm` rescales the gradient of the global batch, not each replica's
    share: with SGD (no momentum) and a cap below the gradient's norm, one update moves
    the weights by lr * cap on one device and on two replicas, and to the same weights.
    Keras' own `global_clipnorm` (each replica's share clipped, then summed) moved them
    1.36 times as far on two replicas."""
    out = run_script("mirrored_clipping.py", shapes_data_dir, LEARNING_RATE)
    result = json.loads(out.strip().splitlines()[-1])
    np.testing.assert_allclose(result["single_moved"], result["step"], rtol=1e-3)
    np.testing.assert_allclose(result["replicated_moved"], result["step"], rtol=1e-3)
    assert result["weight_difference"] < 1e-7, result


def test_reviving_mixture_components_under_mirrored_matches_one_device():
    """ReviveComponents on a collapsed mixture under MirroredStrategy revives the same
    components as on one device, with the same weights, on both replicas."""
    out = run_script("mirrored_revive.py", timeout=180)
    result = json.loads(out.strip().splitlines()[-1])
    assert result["single_logits"][0] > -5 and min(result["single_logits"][1:]) > -5
    assert result["replicated_logits"] == result["single_logits"]
    assert result["replicas_equal"] and result["difference_from_single"] == 0.0, result


# ------------------------------------------------------------------------ MultiWorkerMirrored


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_workers_train_identically_and_only_the_chief_writes(shapes_data_dir, tmp_path,
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
            [sys.executable, script("multi_worker_train.py"), shapes_data_dir, str(model_dir),
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

    assert cli.main(["train", "--model-dir", str(model_dir), "--data-dir", shapes_data_dir,
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
