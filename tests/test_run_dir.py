"""One writer per run folder (`videoflow_tf.training.run_dir.claim`): a second `train` on a folder
in use stops at once naming the holder, readers read on, and a holder killed with SIGKILL
leaves nothing that blocks the next run. The concurrent runs are real processes."""
import os
import signal
import subprocess
import sys
import time

import pytest

import videoflow_tf  # noqa: F401  (before TensorFlow: imports it quietly)
import tensorflow as tf

from videoflow_tf.commands import cli
from videoflow_tf.training import open_model, run_dir

WAIT_S = 600  # for a subprocess to get somewhere, on a loaded machine


def train_command(model_dir, data_dir, steps, *extra):
    return [sys.executable, "-m", "videoflow_tf.commands.cli", "train", "--config", "tiny", "--model",
            str(model_dir), "--data-dir", data_dir, "--steps", str(steps), "--monitor-every",
            "0", "--sample-every", "0", "--verbose", "2", *extra]


def latest_step(model_dir):
    latest = tf.train.latest_checkpoint(os.path.join(model_dir, run_dir.CHECKPOINT_DIR))
    return -1 if latest is None else run_dir.checkpoint_step(latest)


def wait_for(condition, process):
    """Waits until `condition()` holds while `process` runs."""
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert process.poll() is None, "the training process ended first"
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def test_a_second_train_stops_at_once_readers_read_on_and_sigkill_frees_the_folder(
        shapes_data_dir, tmp_path, capsys):
    model_dir = tmp_path / "run"
    log = open(tmp_path / "holder.txt", "w")
    holder = subprocess.Popen(train_command(model_dir, shapes_data_dir, 10 ** 6,
                                            "--checkpoint-every-steps", "4"),
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: latest_step(model_dir) >= 0, holder)  # started: holds the folder
        second = subprocess.run(train_command(model_dir, shapes_data_dir, 3),
                                capture_output=True, text=True, timeout=WAIT_S)
        assert second.returncode == 2
        assert second.stderr == (
            f"videoflow-tf train: error: {model_dir} is in use: process {holder.pid} is "
            "training in it, and a run folder has one writer; wait for it to end, or train "
            "in another --model\n")
        assert "step" not in second.stdout  # it stopped before training or writing
        assert holder.poll() is None  # the first goes on

        # Readers take no lock: each reads the newest whole checkpoint meanwhile.
        assert cli.main(["sample", "--model", str(model_dir), "--out",
                         str(tmp_path / "s.gif"), "--num-contexts", "1",
                         "--samples-per-context", "1"]) == 0
        assert cli.main(["evaluate", "--model", str(model_dir), "--out",
                         str(tmp_path / "e.json"), "--sample-videos", "0"]) == 0
        assert cli.main(["export", "--model", str(model_dir), "--out",
                         str(tmp_path / "sm")]) == 0
        seen = latest_step(model_dir)
        wait_for(lambda: latest_step(model_dir) > seen, holder)  # still training
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=WAIT_S)
    finally:
        holder.kill()
        holder.wait()
        log.close()
    lock = model_dir / run_dir.LOCK_FILE
    assert lock.read_text() == f"{holder.pid}\n"  # left behind by the killed holder...
    killed_at = latest_step(model_dir)
    capsys.readouterr()
    # ...and blocking nothing: the next train resumes, and on its clean end removes it.
    assert cli.main(train_command(model_dir, shapes_data_dir, killed_at + 2)[3:]) == 0
    assert f"Resuming {model_dir} at step {killed_at}" in capsys.readouterr().out
    assert latest_step(model_dir) == killed_at + 2
    assert not lock.exists()


def test_a_claim_names_its_holder_and_ends_with_the_call_that_made_it(tmp_path):
    folder = tmp_path / "new" / "run"

    @run_dir.releases_claims
    def write():
        run_dir.claim(str(folder))
        assert (folder / run_dir.LOCK_FILE).read_text() == f"{os.getpid()}\n"
        # A second claim, even from this process, finds the folder taken.
        with pytest.raises(run_dir.RunInUse, match=f"process {os.getpid()} is training in"):
            run_dir.claim(str(folder))
        raise KeyError("the writer failed")

    with pytest.raises(KeyError):
        write()
    assert not (tmp_path / "new").exists()  # released; the folders it made were left empty

    # A lock file whose process is gone (as after a SIGKILL) blocks nothing.
    folder.mkdir(parents=True)
    (folder / run_dir.LOCK_FILE).write_text("999999999\n")
    claim = run_dir.claim(str(folder))
    assert (folder / run_dir.LOCK_FILE).read_text() == f"{os.getpid()}\n"
    claim.release()
    assert os.listdir(folder) == []  # the folder existed: it stays


def test_train_refuses_to_write_into_a_savedmodel(tmp_path, capsys):
    shipped = open_model.SHIPPED_MODEL
    before = sorted(os.listdir(shipped))
    assert cli.main(["train", "--config", "tiny", "--model", shipped, "--steps", "1"]) == 2
    error = capsys.readouterr().err
    assert len(error.strip().splitlines()) == 1
    assert f"{shipped} is a SavedModel, not a run folder" in error
    assert sorted(os.listdir(shipped)) == before
