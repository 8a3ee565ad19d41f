"""The `videoflow-tf` command line end to end on the `tiny` config and a small
stochastic-shapes dataset (conftest's shapes_data_dir: 32 training and 8 test videos).

Commands run in-process through `cli.main`; subprocesses only for the console script and
for the run that is killed with SIGKILL and resumed.
"""
import glob
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
import types

import numpy as np
import pytest
from PIL import Image

import videoflow_tf as vf
import keras
import tensorflow as tf
import tensorflow_datasets as tfds

from helpers import CONTEXT, SHAPES_SPLIT_SIZES, TINY, script
from videoflow_tf.analysis import visualize
from videoflow_tf.commands import cli, export
from videoflow_tf.commands.temperature_sweep import MAX_PSNR, frame_scores
from videoflow_tf.data.videos import load_videos, shape_labels
from videoflow_tf.model import optim
from videoflow_tf.training import open_model, run_dir, train as train_lib
from videoflow_tf.training.monitor import SampleQuality, read_records
from videoflow_tf.usage import UsageError


def _console_script():
    """The installed videoflow-tf script: on PATH, or beside this Python (an unactivated venv)."""
    return shutil.which("videoflow-tf") or shutil.which(
        "videoflow-tf", path=os.path.dirname(sys.executable))


def train_args(model_dir, data_dir, steps, *extra):
    return ["train", "--config", "tiny", "--model-dir", str(model_dir), "--data-dir", data_dir,
            "--steps", str(steps), "--steps-per-epoch", "3", "--sample-every", "0",
            "--verbose", "2", *extra]


@pytest.fixture(scope="module")
def run(shapes_data_dir, tmp_path_factory):
    """A tiny run trained for 6 steps, checkpointed at the start and every 3 steps (never
    by time, however slow the machine), sampled every 3."""
    model_dir = tmp_path_factory.mktemp("run") / "tiny"
    args = train_args(model_dir, shapes_data_dir, 6, "--checkpoint-every-steps", "3",
                      "--checkpoint-every", "1e9", "--summary-every", "2")
    args[args.index("--sample-every") + 1] = "3"
    assert cli.main(args) == 0
    return str(model_dir)


def progress_counts(out):
    """(done, target) of every finished progress bar in stdout (--verbose 2 lines)."""
    return [(int(done), int(target))
            for done, target in re.findall(r"^\s*(\d+)/(\d+) - ", out, re.MULTILINE)]


def copy_run(run, tmp_path):
    shutil.copytree(run, tmp_path / "copy")
    return str(tmp_path / "copy")


def events(model_dir, log_dir=run_dir.LOG_DIR):
    """{tag: {step: value}} of the run's TensorBoard logs in `log_dir`."""
    found = {}
    for path in glob.glob(os.path.join(model_dir, log_dir, "events.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                found.setdefault(value.tag, {})[event.step] = (
                    value.metadata.plugin_data.plugin_name, tf.make_ndarray(value.tensor))
    return found


def recomputed_sample_scores(model, videos, num_frames, seeds_per_video, seed):
    """What the monitor and `evaluate` report of a model's samples (test_monitor.py checks
    the motion numbers), recomputed eagerly from its public methods: the futures of every
    video's context under seeds seed, seed + 1, ..., scored by log_prob (noise seed 0)."""
    given = model.config.num_context_frames
    contexts = np.repeat(videos[:, :given], seeds_per_video, axis=0)
    samples = model.sample_details(contexts, num_frames, seed=seed + np.arange(len(contexts)))
    clips = np.concatenate([contexts, samples.frames.numpy()], axis=1)
    sample_bpp = model.bits_per_pixel(clips, seed=0).numpy()
    real_bpp = model.bits_per_pixel(videos[:, :given + num_frames], seed=0).numpy()
    scores = {"sample_bpp": sample_bpp[np.isfinite(sample_bpp)].mean(),
              "real_bpp": real_bpp.mean(),
              "invalid_fraction": samples.invalid.numpy().sum() / clips[:, given:].size}
    return {**scores, "sample_to_real_bpp": scores["sample_bpp"] / scores["real_bpp"]}


def test_train_monitors_its_samples_in_json_lines_and_tensorboard(run, shapes_data_dir):
    (record,) = read_records(os.path.join(run, run_dir.MONITOR_FILE))  # at the end only
    assert record["step"] == 6 and record["num_frames"] == 5 - CONTEXT
    # The monitor watches validation videos, all 8 of this small split, 2 seeds each.
    assert 0 < record["cpu_seconds"] and record["samples"] == SHAPES_SPLIT_SIZES["validation"] * 2
    model, _ = open_model.load_model(run)
    videos = load_videos(TINY, "validation", 8, shapes_data_dir, num_frames=5)
    for key, value in recomputed_sample_scores(model, videos, 5 - CONTEXT, 2, 0).items():
        np.testing.assert_allclose(record[key], value, rtol=1e-5, err_msg=key)
    for key in ("t1_bpp_ratio_median", "t1_bpp_ratio_above_2x", "faithful_fraction",
                "distinct_directions", "consistent_fraction", "colour_kept_fraction",
                "continued_fraction"):
        assert np.isfinite(record[key])
    assert record["num_futures"] == record["samples"] and "futures" not in record
    logged = events(run, run_dir.MONITOR_LOG_DIR)
    for key in ("sample_bpp", "real_bpp", "consistent_fraction"):
        plugin, value = logged[f"samples/{key}"][6]
        np.testing.assert_allclose(value, record[key], rtol=1e-6)


def test_train_makes_the_configs_train_steps_unless_told(shapes_data_dir, tmp_path, capsys):
    args = train_args(tmp_path / "run", shapes_data_dir, 1, "--set", "train_steps=2",
                      "--monitor-every", "0")
    steps_at = args.index("--steps")
    assert cli.main(args[:steps_at] + args[steps_at + 2:]) == 0
    assert "Trained to step 2" in capsys.readouterr().out


def test_a_cpu_budget_stops_training_and_counts_across_resumption(shapes_data_dir, tmp_path):
    model_dir = tmp_path / "budget"
    assert cli.main(train_args(model_dir, shapes_data_dir, 1000, "--max-cpu-seconds", "3",
                               "--monitor-every", "0")) == 0
    checkpoint = tf.train.Checkpoint(cpu_seconds=tf.Variable(0.0, dtype=tf.float64))
    latest = tf.train.latest_checkpoint(str(model_dir / "checkpoints"))
    checkpoint.restore(latest).expect_partial()
    used, step = float(checkpoint.cpu_seconds.numpy()), run_dir.checkpoint_step(latest)
    assert 3 <= used < 30 and 0 < step < 1000
    # Spent: a second start trains no further; a larger budget continues the count.
    assert cli.main(train_args(model_dir, shapes_data_dir, 1000, "--max-cpu-seconds", "3")) == 0
    assert run_dir.checkpoint_step(tf.train.latest_checkpoint(str(model_dir / "checkpoints"))) == step
    assert cli.main(train_args(model_dir, shapes_data_dir, step + 3, "--max-cpu-seconds", "1000",
                               "--monitor-every", "0")) == 0
    checkpoint.restore(tf.train.latest_checkpoint(str(model_dir / "checkpoints"))).expect_partial()
    assert float(checkpoint.cpu_seconds.numpy()) > used


@pytest.mark.parametrize("stop", ["ctrl-c", "SIGTERM", "SIGINT ignored at start"])
def test_ctrl_c_saves_the_step_says_so_and_the_same_command_resumes(
        shapes_data_dir, tmp_path, monkeypatch, capsys, stop):
    """Ctrl-C, `kill` (SIGTERM, also what cluster schedulers send before killing) and
    SIGINT to a background job (which starts with SIGINT ignored) all save the step."""
    class StopAtStep2(train_lib.CpuTime):
        def on_train_batch_end(self, batch, logs=None):
            super().on_train_batch_end(batch, logs)
            if int(self.model.optimizer.iterations.numpy()) == 2:
                if stop == "ctrl-c":
                    raise KeyboardInterrupt
                os.kill(os.getpid(), signal.SIGTERM if stop == "SIGTERM" else signal.SIGINT)

    model_dir = tmp_path / "interrupted"
    args = train_args(model_dir, shapes_data_dir, 4, "--monitor-every", "0",
                      "--checkpoint-every", "1e9")
    handlers = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGINT)}
    with monkeypatch.context() as patch:
        patch.setattr(train_lib, "CpuTime", StopAtStep2)
        if stop == "SIGINT ignored at start":
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            assert cli.main(args) == 130
            if stop == "SIGINT ignored at start":
                assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN  # put back
        finally:
            signal.signal(signal.SIGINT, handlers[signal.SIGINT])
    assert signal.getsignal(signal.SIGTERM) == handlers[signal.SIGTERM]
    err = capsys.readouterr().err
    assert "Interrupted at step 2: saved" in err and err.rstrip().endswith("interrupted")
    assert "Traceback" not in err
    latest = tf.train.latest_checkpoint(str(model_dir / "checkpoints"))
    assert run_dir.checkpoint_step(latest) == 2
    assert cli.main(args) == 0
    assert "Resuming" in capsys.readouterr().out
    assert run_dir.checkpoint_step(
        tf.train.latest_checkpoint(str(model_dir / "checkpoints"))) == 4


def test_checkpoints_are_split_into_small_files_and_resume(shapes_data_dir, tmp_path,
                                                            monkeypatch):
    monkeypatch.setattr(run_dir, "MAX_SHARD_BYTES", 64 << 10)  # tiny: ~300 KB in all
    model_dir = tmp_path / "sharded"
    args = train_args(model_dir, shapes_data_dir, 2, "--monitor-every", "0")
    assert cli.main(args) == 0
    data = glob.glob(str(model_dir / "checkpoints" / "ckpt-2.data-*"))
    assert len(data) > 1 and max(os.path.getsize(path) for path in data) <= 64 << 10
    assert cli.main(train_args(model_dir, shapes_data_dir, 3, "--monitor-every", "0")) == 0
    assert run_dir.checkpoint_step(
        tf.train.latest_checkpoint(str(model_dir / "checkpoints"))) == 3


@pytest.mark.parametrize("source", ["run", "savedmodel"])
def test_a_new_run_starts_from_the_weights_of_another_model(run, shapes_data_dir, tmp_path, source):
    model, _ = open_model.load_model(run)
    path = run if source == "run" else export.export_saved_model(model, str(tmp_path / "sm"))
    model_dir = tmp_path / "continued"
    assert cli.main(train_args(model_dir, shapes_data_dir, 1, "--init-from", path,
                               "--set", "learning_rate=1e-30", "--monitor-every", "0")) == 0
    continued, step = open_model.load_model(str(model_dir))
    assert step == 1  # the step count starts afresh
    for ours, theirs in zip(continued.weights, model.weights):
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-5, atol=1e-6)
    assert run_dir.read_settings(str(model_dir))["init_from"] == os.path.abspath(path)


def test_a_run_started_from_a_model_takes_its_config_unless_told(run, shapes_data_dir,
                                                                tmp_path):
    path = export.export_saved_model(open_model.load_model(run)[0], str(tmp_path / "sm"),
                                     temperature=0.5)
    args = train_args(tmp_path / "continued", shapes_data_dir, 1, "--init-from", path,
                      "--monitor-every", "0")
    args.remove("--config")
    args.remove("tiny")
    assert cli.main(args) == 0
    assert run_dir.read_config(str(tmp_path / "continued")) == TINY.replace(temperature=0.5)


def test_init_from_a_model_of_another_architecture_is_refused(run, shapes_data_dir, tmp_path,
                                                              capsys):
    code = cli.main(train_args(tmp_path / "other", shapes_data_dir, 1, "--init-from", run,
                               "--set", "coupling_width=4"))
    assert code == 2
    assert "does not fit" in capsys.readouterr().err


def test_training_revives_the_dead_components_of_a_collapsed_mixture(shapes_data_dir, tmp_path,
                                                                     capsys):
    """A mixture whose components 1-3 have no weight and fit no frame (as after a
    collapse early in training), trained on with revive_components_every: they are split
    off component 0 when training starts, and keep their new weight."""
    mixture = ["--set", "top_prior_components=4", "--monitor-every", "0"]
    assert cli.main(train_args(tmp_path / "collapsed", shapes_data_dir, 1, *mixture)) == 0
    model, step = open_model.load_model(str(tmp_path / "collapsed"))
    top = model.prior.levels[-1]
    bias = top.encoder.head.bias.numpy()
    bias[-3:] = -30.0  # the logits of components 1-3
    top.encoder.head.bias.assign(bias)
    top.component_offsets.assign(tf.tensor_scatter_nd_update(  # and their means far off
        top.component_offsets, [[1], [2], [3]], tf.fill((3,) + top.latent_shape, 100.0)))
    run_dir.checkpoint_manager(str(tmp_path / "collapsed"), run_dir.make_checkpoint(model)).save(
        checkpoint_number=step + 1)
    capsys.readouterr()
    assert cli.main(train_args(tmp_path / "revived", shapes_data_dir, 2, "--init-from",
                               str(tmp_path / "collapsed"), *mixture[:2],
                               "revive_components_every=100", *mixture[2:])) == 0
    assert re.search(r"ReviveComponents: step 0: top-prior components \[1, 2, 3\] were dead; "
                     r"each now takes part of \[0, ", capsys.readouterr().out)
    revived = open_model.load_model(str(tmp_path / "revived"))[0].prior.levels[-1]
    assert np.all(revived.encoder.head.bias.numpy()[-3:] > -5.0)
    assert np.abs(revived.component_offsets.numpy()[1:]).max() < 50.0


def test_train_writes_the_config_checkpoints_and_tensorboard_logs(run):
    assert run_dir.read_config(run) == TINY
    assert run_dir.read_settings(run)["data_seed"] == 0
    steps = sorted(run_dir.checkpoint_step(path) for path in
                   tf.train.get_checkpoint_state(os.path.join(run, "checkpoints"))
                   .all_model_checkpoint_paths)
    assert steps == [0, 3, 6]
    logged = events(run)
    assert sorted(logged["bpp"]) == [2, 4, 6]
    assert all(plugin == "scalars" and np.isfinite(value) and value > 0
               for plugin, value in logged["bpp"].values())
    schedule = optim.LinearWarmup(TINY.learning_rate, TINY.warmup_steps)
    for step, (_, value) in logged["learning_rate"].items():
        np.testing.assert_allclose(value, float(schedule(step)), rtol=1e-6)
    assert sorted(logged["samples"]) == [3, 6]
    plugin, tensor = logged["samples"][6]
    assert plugin == "images" and len(tensor) == 2 + train_lib.NUM_SUMMARY_VIDEOS
    width, height = int(tensor[0]), int(tensor[1])
    image = tf.io.decode_png(tensor[2]).numpy()
    assert image.shape == (height, width, 3)


def test_a_second_run_resumes_to_the_requested_total_with_the_data_continuing(
        run, shapes_data_dir, tmp_path, capsys):
    model_dir = copy_run(run, tmp_path)
    assert cli.main(train_args(model_dir, shapes_data_dir, 8)) == 0
    out = capsys.readouterr().out
    assert "at step 6 of 8" in out
    assert progress_counts(out) == [(2, 2)] and "Steps 7-8 of 8" in out
    model, step = open_model.load_model(model_dir)
    assert step == 8

    # Data order: a restored run's batches are those after the ones its steps used.
    _, _, dataset, step = train_lib.setup_training(TINY, model_dir, shapes_data_dir, 0, 3)
    assert step == 8
    fresh = vf.data.make_dataset("stochastic_shapes", "train", TINY, TINY.batch_size,
                                 training=True, data_dir=shapes_data_dir, seed=0)
    np.testing.assert_array_equal(np.stack(list(tfds.as_numpy(dataset.take(2)))),
                                  np.stack(list(tfds.as_numpy(fresh.skip(8).take(2)))))


DETERMINISTIC_CLI = script("deterministic_videoflow_tf.py")


def _kill_when(command, log, condition, timeout=600):
    """Runs `command` (stdout to the file `log`) and SIGKILLs it as soon as `condition()`
    holds; fails if it ends first."""
    with open(log, "w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while not condition():
            assert process.poll() is None, f"ended before it could be killed: {log}"
            assert time.monotonic() < deadline
            time.sleep(0.001)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()


def _checkpoint_files(model_dir):
    folder = os.path.join(model_dir, "checkpoints")
    return os.listdir(folder) if os.path.isdir(folder) else []


def _latest_step(model_dir):
    """The step of the run's latest whole checkpoint, -1 if it has none."""
    latest = tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))
    return -1 if latest is None else run_dir.checkpoint_step(latest)


def test_train_killed_three_times_ends_with_the_weights_of_an_uninterrupted_run(
        shapes_data_dir, tmp_path):
    """SIGKILL before the first checkpoint, while one is being written and after one; each
    restart resumes from the last whole checkpoint and the weights end as a run's that
    was never killed (op determinism on in both)."""
    steps = 10

    def command(model_dir):
        # -u: what a run printed before its SIGKILL reaches the log.
        return [sys.executable, "-u", DETERMINISTIC_CLI] + train_args(
            model_dir, shapes_data_dir, steps, "--checkpoint-every-steps", "1")

    whole, killed = str(tmp_path / "whole"), str(tmp_path / "killed")
    subprocess.run(command(whole), check=True, capture_output=True, timeout=600)
    rng = random.Random(17)
    logs = [str(tmp_path / f"attempt-{index}.txt") for index in range(4)]

    # Before the first checkpoint: within TensorFlow's import, long before one.
    started = time.monotonic()
    delay = rng.uniform(0.2, 1.0)
    _kill_when(command(killed), logs[0], lambda: time.monotonic() - started > delay)
    assert _latest_step(killed) == -1

    # While a checkpoint after the first is being written (TensorFlow writes it into
    # ckpt-N_temp/, then moves it into place and deletes that folder).
    first_whole = rng.randint(0, 3)
    _kill_when(command(killed), logs[1],
               lambda: _latest_step(killed) >= first_whole
               and any("_temp" in name for name in _checkpoint_files(killed)))
    mid_write = _latest_step(killed)
    assert first_whole <= mid_write < steps
    assert any("_temp" in name for name in _checkpoint_files(killed))  # left half-written

    # After a checkpoint, between two.
    after = min(mid_write + rng.randint(1, 3), steps - 1)
    _kill_when(command(killed), logs[2],
               lambda: _latest_step(killed) >= after
               and not any("_temp" in name for name in _checkpoint_files(killed)))
    last_whole = _latest_step(killed)
    assert after <= last_whole < steps

    with open(logs[3], "w") as out:
        subprocess.run(command(killed), check=True, stdout=out, stderr=subprocess.STDOUT,
                       timeout=600)
    texts = [open(log).read() for log in logs]
    assert "starting fresh at step 0" in texts[1]
    assert f"at step {mid_write} of {steps}" in texts[2]
    assert "a checkpoint a killed run left half-written" in texts[2]  # and removed it
    assert f"at step {last_whole} of {steps}" in texts[3]  # nothing lost
    (model, step), (expected, expected_step) = (open_model.load_model(killed),
                                                open_model.load_model(whole))
    assert step == expected_step == steps
    for weight, reference in zip(model.weights, expected.weights):
        np.testing.assert_allclose(weight.numpy(), reference.numpy(), rtol=1e-6, atol=1e-7,
                                   err_msg=weight.path)


def test_a_non_finite_loss_stops_with_the_step_and_keeps_the_good_weights(
        shapes_data_dir, tmp_path, capsys):
    model_dir = str(tmp_path / "nan")
    # An absurd learning rate makes the first update overflow the weights.
    assert cli.main(train_args(model_dir, shapes_data_dir, 20, "--set", "learning_rate=1e30")) == 1
    error = capsys.readouterr().err.strip()
    assert "the loss was not finite at step 2" in error and "(step 1)" in error
    model, step = open_model.load_model(model_dir)
    assert step == 1
    assert all(np.all(np.isfinite(w.numpy())) for w in model.weights
               if w.dtype.startswith("float"))


def test_evaluate_reports_the_bits_per_pixel_of_every_target_frame(run, shapes_data_dir, tmp_path,
                                                                    capsys):
    out = tmp_path / "eval.json"
    assert cli.main(["evaluate", "--model-dir", run, "--out", str(out), "--batch-size", "3",
                     "--sample-videos", "5", "--seed", "7"]) == 0
    assert "\x1b[" not in capsys.readouterr().out  # no colour codes but on a terminal
    results = json.loads(out.read_text())
    assert results["step"] == 6 and results["num_videos"] == SHAPES_SPLIT_SIZES["test"]
    model, _ = open_model.load_model(run)
    videos = vf.data.make_dataset("stochastic_shapes", "test", TINY, 8, training=False,
                                  data_dir=shapes_data_dir)
    expected = model.bits_per_pixel(next(iter(videos)), seed=7, per_frame=True).numpy()
    np.testing.assert_allclose(results["bpp_per_frame"], expected.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(results["bpp"], expected.mean(), rtol=1e-5)
    samples = results["samples"]
    assert samples["num_videos"] == 5 and samples["num_frames"] == 5 - CONTEXT
    assert sum(samples["direction_counts"].values()) == samples["faithful"]
    assert sum(samples["loose_direction_counts"].values()) == round(
        samples["consistent_fraction"] * 5)
    assert [record["context"] for record in samples["futures"]] == list(range(5))
    assert all(len(record["iou"]) == 5 - CONTEXT for record in samples["futures"])
    videos = load_videos(TINY, "test", 5, shapes_data_dir, num_frames=5)
    for key, value in recomputed_sample_scores(model, videos, 5 - CONTEXT, 1, 7).items():
        np.testing.assert_allclose(samples[key], value, rtol=1e-5, err_msg=key)
    for key in ("colour_kept_fraction", "continued_fraction"):
        assert np.isfinite(samples[key])


def test_evaluate_names_its_default_output_after_the_split(run, tmp_path):
    model_dir = copy_run(run, tmp_path)
    assert cli.main(["evaluate", "--model-dir", model_dir, "--split", "test[:4]",
                     "--sample-videos", "0"]) == 0
    results = json.loads((tmp_path / "copy" / "evaluation-test__4_.json").read_text())
    assert results["split"] == "test[:4]" and results["num_videos"] == 4


class _StubQuality(SampleQuality):
    """Samples the real future ("oracle"), the given frames backwards from the last but one
    ("reverse": steady motion opposite to the real steps, as long as the context is) or
    the last given frame again ("still"), and scores every clip 1 bit per pixel."""

    def __init__(self, config, videos, mode):
        super().__init__(types.SimpleNamespace(config=config))
        self.videos, self.mode = videos, mode

    def sample(self, context, num_frames, temperature, seeds):
        given = context.shape[1]
        real = self.videos[seeds % len(self.videos)]
        assert np.array_equal(real[:, :given], context)
        if self.mode == "oracle":
            frames = real[:, given:given + num_frames]
        elif self.mode == "reverse":
            frames = context[:, given - 2::-1][:, :num_frames]
        else:
            frames = np.repeat(context[:, -1:], num_frames, axis=1)
        return frames, np.zeros(len(context), np.int32)

    def bits_per_pixel(self, videos):
        return np.ones(len(videos))


def test_motion_metrics_tell_oracle_reverse_and_still_futures_apart(shapes_data_dir):
    config = TINY.replace(image_size=32, num_context_frames=2)
    videos = load_videos(config, "test", 8, shapes_data_dir, num_frames=5)
    labels = shape_labels(config, "test", 8, shapes_data_dir)
    for mode, expected in [("oracle", 1.0), ("still", 0.0)]:
        report = _StubQuality(config, videos, mode).measure(videos, 3, seeds_per_video=1,
                                                            labels=labels)
        assert report["faithful_fraction"] == expected
        assert report["consistent_fraction"] == report["continued_fraction"] == expected
        assert report["colour_kept_fraction"] == 1.0
        assert report["sample_to_real_bpp"] == report["t1_bpp_ratio_median"] == 1.0
        assert len(report["futures"]) == 8 and all(
            record["faithful"] == bool(expected) for record in report["futures"])
    # Moving steadily, but back where the real step came from: not a continuation.
    reverse = _StubQuality(config, videos, "reverse")
    assert reverse.continued_fraction(videos, 2, 1.0, 1, 0) == 0.0


def test_sample_writes_a_gif_grid_with_context_frames_marked_and_a_png_strip(run, tmp_path):
    out = tmp_path / "samples.gif"
    assert cli.main(["sample", "--model", run, "--out", str(out), "--num-contexts", "2",
                     "--samples-per-context", "3", "--num-frames", "4"]) == 0
    gif = Image.open(out)
    assert gif.n_frames == CONTEXT + 4
    scale = visualize.default_scale(TINY.image_size)
    tile = TINY.image_size * scale + 2 * scale  # frame plus its border
    assert gif.size == (3 * tile + 2 * 2, 2 * tile + 2)  # 3 columns, 2 rows, 2-pixel gaps
    for index, colour in [(0, visualize.CONTEXT_COLOUR), (CONTEXT, visualize.GENERATED_COLOUR)]:
        gif.seek(index)
        np.testing.assert_allclose(np.asarray(gif.convert("RGB"))[0, 0], colour, atol=8)
    strip = Image.open(tmp_path / "samples.png")
    small = TINY.image_size * (scale // 2) + 2 * (scale // 2)
    assert strip.size == ((CONTEXT + 4) * (small + 2) - 2, 6 * (small + 2) - 2)


def test_sample_from_an_exported_savedmodel_matches_the_run(run, shapes_data_dir, tmp_path):
    model, _ = open_model.load_model(run)
    version = export.export_saved_model(model, str(tmp_path / "savedmodels" / "tiny"),
                                           num_frames=2)
    strips = []
    for name, source in [("run", run), ("base", os.path.dirname(version)),
                         ("version", version)]:
        # 5 frames from a SavedModel that samples 2 per call: fed back as context twice.
        assert cli.main(["sample", "--model", source, "--out", str(tmp_path / f"{name}.gif"),
                         "--num-contexts", "2", "--samples-per-context", "2",
                         "--num-frames", "5", "--seed", "11", "--data-dir", shapes_data_dir]) == 0
        strips.append(np.asarray(Image.open(tmp_path / f"{name}.png")))
    assert Image.open(tmp_path / "base.gif").n_frames == CONTEXT + 5
    np.testing.assert_array_equal(strips[1], strips[2])
    # The run samples all 5 frames in one go; the SavedModel's first 2 are the same frames.
    frames_per_row = CONTEXT + 5
    width = (strips[0].shape[1] + 2) // frames_per_row
    np.testing.assert_array_equal(strips[0][:, :width * (CONTEXT + 2)],
                                  strips[1][:, :width * (CONTEXT + 2)])


def test_evaluate_scores_a_savedmodel_through_its_signatures_as_the_run(run, shapes_data_dir,
                                                                      tmp_path, capsys):
    model, _ = open_model.load_model(run)
    version = export.export_saved_model(model, str(tmp_path / "savedmodels" / "tiny"))
    results = {}
    for name, source in [("run", run), ("savedmodel", os.path.dirname(version))]:
        out = tmp_path / f"{name}.json"
        assert cli.main(["evaluate", "--model", source, "--out", str(out), "--data-dir",
                         shapes_data_dir, "--sample-videos", "4", "--sample-frames",
                         str(TINY.num_target_frames)]) == 0
        results[name] = json.loads(out.read_text())
    ran, served = results["run"], results["savedmodel"]
    assert served["saved_model"] == version and "step" not in served
    assert served["num_videos"] == ran["num_videos"] == SHAPES_SPLIT_SIZES["test"]
    # The log_prob signature's noise is evaluate's default --seed 0.
    np.testing.assert_allclose(served["bpp_per_frame"], ran["bpp_per_frame"], rtol=1e-5)
    # serving_default samples the run's frames: the same seeds give the same futures.
    assert served["samples"]["num_frames"] == TINY.num_target_frames
    for key in ("sample_bpp", "real_bpp", "invalid_fraction", "consistent_fraction"):
        np.testing.assert_allclose(served["samples"][key], ran["samples"][key], rtol=1e-5,
                                   err_msg=key)
    assert np.isfinite(served["samples"]["continued_fraction"])

    capsys.readouterr()
    assert cli.main(["evaluate", "--model", version]) == 2  # nowhere to write by default
    assert "--out is needed to evaluate a SavedModel" in capsys.readouterr().err


def test_evaluate_says_a_one_frame_savedmodel_cannot_be_given_a_real_step(
        shapes_data_dir, tmp_path, capsys):
    """Its serving_default keeps only the last context frame, so the step given after it
    would be cut off: no continued_fraction rather than a meaningless 0."""
    model = vf.VideoFlow(TINY.replace(num_context_frames=1))
    version = export.export_saved_model(model, str(tmp_path / "one_frame"))
    out = tmp_path / "one_frame.json"
    assert cli.main(["evaluate", "--model", version, "--out", str(out), "--data-dir",
                     shapes_data_dir, "--sample-videos", "2", "--sample-frames", "2"]) == 0
    assert "going on after a real step: not measured" in capsys.readouterr().out
    samples = json.loads(out.read_text())["samples"]
    assert "continued_fraction" not in samples and "consistent_fraction" in samples


def test_sample_is_reproducible_with_a_seed(run, tmp_path):
    frames = []
    for name, seed in [("a", "3"), ("b", "3"), ("c", "4")]:
        out = tmp_path / f"{name}.gif"
        assert cli.main(["sample", "--model", run, "--out", str(out), "--num-contexts", "1",
                         "--samples-per-context", "2", "--seed", seed]) == 0
        frames.append(np.asarray(Image.open(tmp_path / f"{name}.png")))
    np.testing.assert_array_equal(frames[0], frames[1])
    assert not np.array_equal(frames[0], frames[2])


def test_order_scores_every_later_frame_right_after_the_context(run, shapes_data_dir, tmp_path,
                                                                capsys):
    out = tmp_path / "order.json"
    assert cli.main(["order", "--model-dir", run, "--out", str(out), "--num-videos", "5",
                     "--batch-size", "2"]) == 0
    assert "\x1b[" not in capsys.readouterr().out
    results = json.loads(out.read_text())
    assert results["frames"] == list(range(CONTEXT, 5)) and results["num_videos"] == 5
    model, _ = open_model.load_model(run)
    videos = load_videos(TINY, "test", 5, shapes_data_dir, num_frames=5)
    for index, frame in enumerate(results["frames"]):
        clips = np.concatenate([videos[:, :CONTEXT], videos[:, frame:frame + 1]], axis=1)
        np.testing.assert_allclose(results["bpp"][index],
                                   model.bits_per_pixel(clips, seed=0).numpy().mean(),
                                   rtol=1e-5)
    assert Image.open(tmp_path / "order.png").size[0] > 0


def test_interpolation_starts_and_ends_at_the_two_videos(run, shapes_data_dir, tmp_path):
    out = tmp_path / "interpolation.gif"
    assert cli.main(["interpolate", "--model-dir", run, "--out", str(out), "--videos", "2",
                     "5", "--steps", "3"]) == 0
    frames = CONTEXT + TINY.num_target_frames
    assert Image.open(out).n_frames == frames
    videos = load_videos(TINY, "test", 6, shapes_data_dir)
    scale = max(1, visualize.default_scale(TINY.image_size) // 2)
    rows = np.asarray(Image.open(tmp_path / "interpolation.png"))
    expected = visualize.strip(videos[[2, 5]], 0, scale)
    height = (expected.shape[0] - 2) // 2
    np.testing.assert_array_equal(rows[:height], expected[:height])  # weight 0: video 2
    np.testing.assert_array_equal(rows[-height:], expected[-height:])  # weight 1: video 5


def test_temperature_sweep_reports_best_of_n_for_every_temperature(run, tmp_path, capsys):
    out = tmp_path / "sweep.json"
    assert cli.main(["temperature-sweep", "--model-dir", run, "--out", str(out),
                     "--temperatures", "0", "1", "--num-samples", "3", "--num-videos", "4",
                     "--batch-size", "5"]) == 0
    assert "\x1b[" not in capsys.readouterr().out
    results = json.loads(out.read_text())
    assert results["temperatures"] == [0.0, 1.0] and results["num_samples"] == 3
    assert all(0 < psnr <= MAX_PSNR for psnr in results["psnr"])
    assert all(-1 <= ssim <= 1 for ssim in results["ssim"])
    assert Image.open(tmp_path / "sweep.png").size[0] > 0


def test_the_sweep_draws_the_same_futures_at_every_temperature(run, tmp_path):
    """Two equal temperatures score alike: each temperature reuses the seeds of the others,
    so only the temperature tells the curves' points apart."""
    out = tmp_path / "sweep.json"
    assert cli.main(["temperature-sweep", "--model", run, "--out", str(out), "--temperatures",
                     "0.7", "0.7", "1", "--num-samples", "2", "--num-videos", "3"]) == 0
    results = json.loads(out.read_text())
    assert results["psnr"][0] == results["psnr"][1] and results["ssim"][0] == results["ssim"][1]
    assert results["psnr"][2] != results["psnr"][0]


def _exported(run, tmp_path):
    """The run exported as a SavedModel: its version folder."""
    return export.export_saved_model(open_model.load_model(run)[0],
                                     str(tmp_path / "savedmodels" / "tiny"))


def test_order_interpolate_and_sweep_rebuild_a_savedmodel_or_open_a_checkpoint(
        run, shapes_data_dir, tmp_path):
    """The Python model rebuilt from a SavedModel's weights and config, and the run's
    newest checkpoint named on its own, give what the run gives."""
    sources = {"run": run, "savedmodel": os.path.dirname(_exported(run, tmp_path)),
               "checkpoint": os.path.join(run, "checkpoints", "ckpt-6")}
    results = {}
    for name, source in sources.items():
        common = ["--model", source, "--data-dir", shapes_data_dir]
        order, sweep = tmp_path / f"order-{name}.json", tmp_path / f"sweep-{name}.json"
        assert cli.main(["order", *common, "--out", str(order), "--num-videos", "4"]) == 0
        assert cli.main(["interpolate", *common, "--out", str(tmp_path / f"mix-{name}.gif"),
                         "--steps", "3"]) == 0
        assert cli.main(["temperature-sweep", *common, "--out", str(sweep), "--temperatures",
                         "0.5", "--num-samples", "2", "--num-videos", "2"]) == 0
        results[name] = (json.loads(order.read_text()), json.loads(sweep.read_text()),
                         np.asarray(Image.open(tmp_path / f"mix-{name}.png")))
    (order, sweep, mix) = results["run"]
    assert order["model_dir"] == os.path.abspath(run) and order["step"] == 6
    for name in ("savedmodel", "checkpoint"):
        other_order, other_sweep, other_mix = results[name]
        np.testing.assert_allclose(other_order["bpp"], order["bpp"], rtol=1e-5)
        np.testing.assert_allclose(other_sweep["psnr"], sweep["psnr"], rtol=1e-5)
        np.testing.assert_array_equal(other_mix, mix)
    assert results["savedmodel"][0]["saved_model"] == os.path.join(
        os.path.abspath(sources["savedmodel"]), "1") and "step" not in results["savedmodel"][0]
    assert results["checkpoint"][0]["checkpoint"] == os.path.abspath(sources["checkpoint"])


def test_every_command_takes_a_checkpoint_of_a_run(run, shapes_data_dir, tmp_path, capsys):
    model_dir = copy_run(run, tmp_path)
    checkpoint = os.path.join(model_dir, "checkpoints", "ckpt-3")
    # evaluate writes next to the run, and says which checkpoint it scored.
    assert cli.main(["evaluate", "--model", checkpoint + ".index", "--sample-videos", "2"]) == 0
    results = json.loads(open(os.path.join(model_dir, "evaluation-test.json")).read())
    assert results["step"] == 3 and results["checkpoint"] == os.path.abspath(checkpoint)
    assert results["model_dir"] == os.path.abspath(model_dir)
    older = open_model.open_model(checkpoint).model
    newest = open_model.load_model(model_dir)[0]
    assert any(not np.array_equal(ours.numpy(), theirs.numpy())
               for ours, theirs in zip(older.weights, newest.weights))
    # sample and export; the export holds ckpt-3's weights.
    assert cli.main(["sample", "--model", checkpoint, "--out", str(tmp_path / "s.gif"),
                     "--num-contexts", "1", "--samples-per-context", "1"]) == 0
    assert cli.main(["export", "--model", checkpoint, "--out", str(tmp_path / "sm")]) == 0
    exported = open_model.python_model(open_model.open_model(str(tmp_path / "sm")))
    for ours, theirs in zip(exported.weights, older.weights):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    # rest-client takes the sizes of a run or a checkpoint, as of its export.
    for source in (model_dir, checkpoint):
        assert cli.main(["rest-client", "request", "--model", source, "--video", "tfds:test:1",
                         "--data-dir", shapes_data_dir, "--out", str(tmp_path / "r.json")]) == 0
        body = json.loads((tmp_path / "r.json").read_text())
        assert np.array(body["inputs"]["context"]).shape == (1, CONTEXT) + TINY.image_shape
    # train writes run folders only.
    capsys.readouterr()
    assert cli.main(train_args(checkpoint, shapes_data_dir, 9)) == 2
    assert "is a checkpoint, not a run folder" in capsys.readouterr().err


def test_the_experiments_run_with_no_options_on_the_shipped_model(shapes_data_dir, tmp_path):
    """`videoflow-tf order`, `interpolate` and `temperature-sweep` as a new user types them,
    in a fresh Python (TFDS_DATA_DIR points TFDS's default at the small test data): each
    writes its plot or GIF and its numbers into the working folder."""
    program = ("import json, sys\n"
               "from videoflow_tf.commands import cli\n"
               "print(json.dumps([cli.main([name]) for name in sys.argv[1:]]))\n")
    commands = ["order", "interpolate", "temperature-sweep"]
    result = subprocess.run([sys.executable, "-c", program, *commands], cwd=tmp_path,
                            capture_output=True, text=True, timeout=900,
                            env=dict(os.environ, TFDS_DATA_DIR=shapes_data_dir))
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [0, 0, 0], result.stderr
    assert sorted(os.listdir(tmp_path)) == [
        "interpolation.gif", "interpolation.png", "order.json", "order.png",
        "temperature-sweep.json", "temperature-sweep.png"]
    shipped = open_model.saved_model_version(open_model.SHIPPED_MODEL)
    config = open_model.exported_config(shipped)
    frames = config.num_context_frames + config.num_target_frames
    order = json.loads((tmp_path / "order.json").read_text())
    assert order["saved_model"] == os.path.abspath(shipped)
    assert order["frames"] == list(range(config.num_context_frames, frames))
    assert order["num_videos"] == SHAPES_SPLIT_SIZES["test"]  # all of the small test split
    sweep = json.loads((tmp_path / "temperature-sweep.json").read_text())
    assert sweep["saved_model"] == os.path.abspath(shipped) and len(sweep["psnr"]) == 5
    assert Image.open(tmp_path / "interpolation.gif").n_frames == frames
    for picture in ("order.png", "temperature-sweep.png", "interpolation.png"):
        assert min(Image.open(tmp_path / picture).size) > 0


def test_a_shipped_model_is_named_by_its_name_alone_unless_a_path_here_has_it(
        tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    shipped = open_model.saved_model_version(open_model.SHIPPED_MODEL)
    assert "stochastic_shapes" in open_model.shipped_model_names()
    assert open_model.open_model("stochastic_shapes").source == {
        "saved_model": os.path.abspath(shipped)}
    assert open_model.model_config("stochastic_shapes") == open_model.exported_config(shipped)
    assert cli.main(["evaluate", "--model", "stochastic_shape"]) == 2
    error = capsys.readouterr().err
    assert "model 'stochastic_shape' does not exist" in error
    assert error.strip().endswith(f"shipped: {', '.join(open_model.shipped_model_names())})")
    (tmp_path / "stochastic_shapes").mkdir()  # a folder here of that name is what it names
    with pytest.raises(UsageError, match="'stochastic_shapes' is neither a training run"):
        open_model.open_model("stochastic_shapes")


def test_frame_scores_are_psnr_and_ssim_averaged_over_frames():
    rng = np.random.default_rng(0)
    real = rng.integers(0, 256, (2, 3, 16, 16, 3), np.uint8)
    noisy = np.clip(real.astype(int) + rng.integers(-20, 21, real.shape), 0, 255).astype(np.uint8)
    psnr, ssim = frame_scores(real, noisy)
    mse = ((real.astype(float) - noisy) ** 2).mean(axis=(2, 3, 4))
    np.testing.assert_allclose(psnr, (10 * np.log10(255 ** 2 / mse)).mean(axis=1), rtol=1e-4)
    assert np.all(ssim < 1)
    psnr, ssim = frame_scores(real, real)
    np.testing.assert_array_equal(psnr, [MAX_PSNR, MAX_PSNR])
    np.testing.assert_allclose(ssim, [1.0, 1.0], rtol=1e-6)


# ------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("args, message", [
    (["train", "--config", "nope", "--model-dir", "{tmp}/r"], "unknown config 'nope'"),
    (["train", "--config", "shapes_cpu", "--model-dir", "{tmp}/r"],
     "'shapes_cpu' is now called 'shapes_32_baseline'"),
    (["train", "--config", "tiny", "--model-dir", "{tmp}/r", "--set", "nope=1"],
     "unknown config field 'nope'"),
    (["train", "--config", "tiny", "--model-dir", "{tmp}/r", "--set", "learning_rate"],
     "--set expects field=value"),
    (["train", "--config", "tiny", "--model-dir", "{tmp}/r", "--set", "num_steps=two"],
     "--set num_steps=two: expected an integer"),
    (["train", "--config", "tiny", "--model-dir", "{tmp}/r", "--set", "gradient_clip_norm=big"],
     "--set gradient_clip_norm=big: expected a number or none"),
    (["train", "--config", "tiny", "--model-dir", "{tmp}/r", "--set", "coupling=cubic"],
     "invalid VideoFlowConfig.coupling = 'cubic'"),
    (["train", "--config", "tiny", "--model-dir", "{tmp}/r", "--dataset", "mnist"],
     "unknown dataset 'mnist'"),
    (["train", "--model-dir", "{tmp}/r"],
     "--config (or --init-from) is required to start a new run"),
    (["train", "--config", "tiny"], "the following arguments are required: --model"),
    (["train", "--config", "tiny", "--model-dir", "{tmp}/r", "--steps", "0"],
     "argument --steps: invalid positive int value: '0'"),
    (["train", "--config", "tiny", "--model-dir", "{tmp}/file/r"],
     "cannot write the model directory"),
    (["evaluate", "--model-dir", "{tmp}/missing"], "model '{tmp}/missing' does not exist"),
    (["evaluate", "--model-dir", "{tmp}"], "is neither a training run folder"),
    (["order", "--model-dir", "{tmp}/missing"], "model '{tmp}/missing' does not exist"),
    (["order", "--model", "{tmp}"], "is neither a training run folder"),
    (["interpolate", "--model", "{tmp}/file"], "model '{tmp}/file' is a file, not a folder"),
    (["temperature-sweep", "--model", "{tmp}/missing"], "model '{tmp}/missing' does not exist"),
    (["sample", "--model", "{tmp}/missing", "--out", "{tmp}/s.gif"], "does not exist"),
    (["sample", "--model", "{tmp}", "--out", "{tmp}/s.gif"],
     "is neither a training run folder"),
    (["sample", "--model", "{tmp}/file", "--out", "{tmp}/s.gif"],
     "model '{tmp}/file' is a file, not a folder"),
    (["evaluate", "--model-dir", "{tmp}/file"], "model '{tmp}/file' is a file, not a folder"),
    (["train", "--config", "tiny", "--model-dir", "{tmp}/r", "--dataset",
      "stochastic_shapes/purple"], "unknown builder config 'purple' of stochastic_shapes; "
     "expected one of ['gray', 'black']"),
    (["sample", "--out", "{tmp}/samples.txt"], "must end with .gif"),
    (["sample", "--out", "{tmp}/missing/samples.gif"], "folder '{tmp}/missing' does not exist"),
    (["sample", "--out", "{tmp}/s.gif", "--temperature", "-1"],
     "argument --temperature: invalid non-negative float value: '-1'"),
    (["fly"], "argument COMMAND: invalid choice: 'fly'"),
])
def test_bad_input_exits_2_with_one_line(args, message, tmp_path, capsys):
    (tmp_path / "file").write_text("not a folder")
    args = [arg.replace("{tmp}", str(tmp_path)) for arg in args]
    assert cli.main(args) == 2
    error = capsys.readouterr().err
    assert len(error.strip().splitlines()) == 1, error
    assert message.replace("{tmp}", str(tmp_path)) in error
    assert error.startswith("videoflow-tf")


def test_resuming_with_another_config_is_refused(run, shapes_data_dir, tmp_path, capsys):
    model_dir = copy_run(run, tmp_path)
    args = train_args(model_dir, shapes_data_dir, 9, "--set", "num_steps=3")
    assert cli.main(args) == 2
    error = capsys.readouterr().err
    assert "holds a run with another configuration (num_steps: 2 in the run, 3 now)" in error
    assert cli.main(train_args(model_dir, shapes_data_dir, 9, "--data-seed", "1")) == 2
    assert "data_seed: 0 in the run, 1 now" in capsys.readouterr().err
    assert run_dir.read_config(model_dir) == TINY  # untouched


def test_a_failed_start_writes_nothing_and_a_fresh_run_checkpoints_its_start(
        shapes_data_dir, tmp_path, capsys):
    model_dir = tmp_path / "fresh"
    for extra, message in [
            (["--dataset", "stochastic_shapes/purple"], "unknown builder config 'purple'"),
            (["--set", "num_train_frames=6"], "stochastic_shapes videos have 5 frames, fewer "
             "than the config's num_train_frames 6")]:
        assert cli.main(train_args(model_dir, shapes_data_dir, 4, *extra)) == 2
        error = capsys.readouterr().err
        assert len(error.strip().splitlines()) == 1 and message in error
        assert not model_dir.exists()

    # The corrected command: a checkpoint of the initialised model before the first step,
    # and a progress line per epoch counting the steps it ran (3, then 1).
    at_start = []
    record = keras.callbacks.LambdaCallback(on_train_begin=lambda logs: at_start.extend(
        run_dir.checkpoint_step(path) for path in tf.train.get_checkpoint_state(
            str(model_dir / "checkpoints")).all_model_checkpoint_paths))
    result = train_lib.train(TINY, None, str(model_dir), 4, data_dir=shapes_data_dir,
                             steps_per_epoch=3, sample_every=0, verbose=2, callbacks=[record])
    assert at_start == [0] and result.step == 4
    out = capsys.readouterr().out
    assert f"No checkpoint in {model_dir}: starting fresh at step 0 of 4." in out
    assert progress_counts(out) == [(3, 3), (1, 1)]
    assert "Steps 1-3 of 4" in out and "Steps 4-4 of 4" in out


def _damage(prefix, how):
    """Truncates or deletes checkpoint `prefix`'s .data or .index file."""
    action, kind = how.split()
    path = glob.glob(f"{prefix}.{kind}*")[0]
    if action == "delete":
        os.remove(path)
    else:
        with open(path, "r+b") as file:
            file.truncate(os.path.getsize(path) // 2)


@pytest.mark.parametrize("how", ["truncate data", "truncate index", "delete data",
                                 "delete index"])
def test_a_damaged_newest_checkpoint_is_skipped_saying_which_and_why(run, tmp_path, capsys,
                                                                     how):
    model_dir = copy_run(run, tmp_path)
    checkpoints = os.path.join(model_dir, "checkpoints")
    _damage(os.path.join(checkpoints, "ckpt-6"), how)
    _, step = open_model.load_model(model_dir)
    assert step == 3
    error = capsys.readouterr().err
    assert error.startswith(f"videoflow-tf: skipping a checkpoint: checkpoint "
                            f"{checkpoints}/ckpt-6 does not read (")
    assert error.strip().endswith(f"; using {checkpoints}/ckpt-3")
    assert len(error.strip().splitlines()) == 1


def test_train_resumes_past_a_truncated_newest_checkpoint_and_none_reading_is_one_line(
        run, shapes_data_dir, tmp_path, capsys):
    model_dir = copy_run(run, tmp_path)
    checkpoints = os.path.join(model_dir, "checkpoints")
    _damage(os.path.join(checkpoints, "ckpt-6"), "truncate data")
    assert cli.main(train_args(model_dir, shapes_data_dir, 7)) == 0
    captured = capsys.readouterr()
    assert "skipping a checkpoint: checkpoint" in captured.err
    assert "Resuming" in captured.out and "at step 3 of 7" in captured.out
    assert open_model.load_model(model_dir)[1] == 7
    assert "skipping" not in capsys.readouterr().err  # the newest reads again

    for index in glob.glob(os.path.join(checkpoints, "ckpt-*.index")):
        _damage(index[:-len(".index")], "truncate index")
    assert cli.main(["evaluate", "--model-dir", model_dir]) == 2
    error = capsys.readouterr().err
    assert len(error.strip().splitlines()) == 1
    assert error.startswith(f"videoflow-tf evaluate: error: checkpoint {checkpoints}/ckpt-7 "
                            "does not read (")


def test_resuming_may_change_the_sampling_temperature(run, shapes_data_dir, tmp_path, capsys):
    model_dir = copy_run(run, tmp_path)
    assert cli.main(train_args(model_dir, shapes_data_dir, 6, "--set", "temperature=0.5")) == 0
    assert "already trained to step 6" in capsys.readouterr().out
    assert run_dir.read_config(model_dir) == TINY.replace(temperature=0.5)


def test_unreadable_checkpoint_is_a_usage_error(run, tmp_path, capsys):
    model_dir = copy_run(run, tmp_path)
    config = run_dir.read_config(model_dir).replace(num_steps=3)  # a model of other shapes
    (tmp_path / "copy" / "config.json").write_text(config.to_json())
    assert cli.main(["evaluate", "--model-dir", model_dir]) == 2
    assert "does not fit the model of its config.json" in capsys.readouterr().err


def test_console_script_documents_every_command():
    script = _console_script()
    assert script, "the videoflow-tf console script is not installed"
    result = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    for command in cli.COMMANDS:
        assert command in result.stdout


def test_a_command_writes_nothing_to_stderr_but_its_errors(run, shapes_data_dir, tmp_path):
    """No TensorFlow start-up lines and no warning from TFDS's own video decoding."""
    result = subprocess.run(
        [_console_script(), "sample", "--model", run, "--data-dir", shapes_data_dir,
         "--out", str(tmp_path / "samples.gif"), "--num-contexts", "1",
         "--samples-per-context", "1"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_help_summarises_each_command_with_its_whole_first_paragraph():
    help_text = " ".join(cli.build_parser().format_help().split())
    for name, module in cli.COMMANDS.items():
        paragraph = " ".join(module.__doc__.strip().split("\n\n")[0].split())
        summary = paragraph.removeprefix(f"`videoflow-tf {name}`: ")
        assert summary.endswith("."), summary
        assert f"{name} {summary}" in help_text


@pytest.mark.parametrize("command", sorted(cli.COMMANDS))
def test_every_option_has_help(command):
    parser = cli.build_parser()
    subparser = parser._subparsers._group_actions[0].choices[command]
    for action in subparser._actions:
        assert action.help, f"{command} {action.option_strings} has no help"
