"""SavedModel export for TF Serving, checked along the server's own path.

One tiny model (conftest's tiny_model) is exported twice per module: with
`vf.export.export_saved_model` (default number of frames) and with `videoflow-tf export`
from a training run folder (3 frames). The exports are served in a fresh Python process
(tests/scripts/tf_serving_session.py) in which this package, TFP and tf-keras cannot be
imported (TensorFlow itself imports Keras 3), through TF1's session loader with the
`serve` tag, feeding and fetching only the tensor names of the SignatureDefs, as TF
Serving does.
"""
import contextlib
import io
import json
import os
import pickle
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import videoflow_tf as vf  # before TensorFlow: imports it quietly
import tensorflow as tf

from helpers import CONTEXT, TARGET, TINY, moving_squares, noise_videos, perturb, script
from videoflow_tf.analysis import visualize
from videoflow_tf.commands import cli, export, rest_client
from videoflow_tf.training import open_model, run_dir


@pytest.fixture(scope="module")
def exports(tiny_model, tmp_path_factory):
    """(base folder, version dir of the API export, version dir of the CLI export, CLI
    output). base already holds version 3 and a non-version folder."""
    root = tmp_path_factory.mktemp("export")
    base = root / "savedmodels" / "tiny"
    (base / "3").mkdir(parents=True)
    (base / "3" / "keep.txt").write_text("an older version")
    (base / "notes").mkdir()
    first = export.export_saved_model(tiny_model, str(base))

    run = str(root / "run")
    run_dir.start_run(run, TINY, {"data_seed": 0, "data_dir": None})
    run_dir.checkpoint_manager(run, run_dir.make_checkpoint(tiny_model)).save(
        checkpoint_number=7)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = cli.main(["export", "--model-dir", run, "--out", str(base),
                           "--num-frames", "3", "--temperature", "0.6"])
    assert status == 0
    return base, first, str(base / "5"), printed.getvalue()


# Requests served by the model server, and what the in-Python model must give for them.
CONTEXTS = noise_videos(2, CONTEXT, seed=1)
BATCH_CONTEXT = CONTEXTS[[0, 1, 0]]  # the first context twice, with different seeds
TEMPERATURES = np.array([1.0, 0.5, 1.0], np.float32)
SEEDS = np.array([11, 2 ** 40 + 3, -12], np.int64)  # one needs the seed's high 32 bits
VIDEOS = noise_videos(3, CONTEXT + TARGET, seed=2)


def sample_request(context, temperature, seed):
    return {"context": context, "temperature": np.asarray(temperature, np.float32),
            "seed": np.asarray(seed, np.int64)}


@pytest.fixture(scope="module")
def served(exports, tmp_path_factory):
    """What the model server answered to REQUESTS (and saved_model_cli's listing)."""
    _, first, second, _ = exports
    requests = {
        "batch": (first, "serving_default", sample_request(BATCH_CONTEXT, TEMPERATURES, SEEDS)),
        **{f"row{b}": (first, "serving_default", sample_request(
            BATCH_CONTEXT[b:b + 1], TEMPERATURES[b:b + 1], SEEDS[b:b + 1])) for b in range(3)},
        "three_frames": (second, "serving_default",
                         sample_request(BATCH_CONTEXT, TEMPERATURES, SEEDS)),
        "log_prob": (first, "log_prob", {"video": VIDEOS}),
        "log_prob_row1": (first, "log_prob", {"video": VIDEOS[1:2]}),
        "negative": (first, "serving_default", sample_request(CONTEXTS, [1.0, -0.5], [1, 2])),
        "nan": (first, "serving_default", sample_request(CONTEXTS, [np.nan, 1.0], [1, 2])),
        "infinite": (first, "serving_default", sample_request(CONTEXTS, [np.inf, 1.0], [1, 2])),
        "short_seed": (first, "serving_default", sample_request(CONTEXTS, [1.0, 1.0], [1])),
        "empty": (first, "serving_default", sample_request(CONTEXTS[:0], [], [])),
        "empty_log_prob": (first, "log_prob", {"video": VIDEOS[:0]}),
    }
    folder = tmp_path_factory.mktemp("server")
    inputs, outputs = str(folder / "requests.pkl"), str(folder / "results.pkl")
    with open(inputs, "wb") as file:
        pickle.dump(list(requests.values()), file)
    listing = subprocess.Popen(
        [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli", "show", "--all",
         "--dir", first], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    server = subprocess.run([sys.executable, script("tf_serving_session.py"), inputs, outputs],
                            capture_output=True, text=True, cwd=str(folder))
    shown, errors = listing.communicate()
    assert server.returncode == 0, server.stderr[-3000:]
    assert listing.returncode == 0, errors[-3000:]
    with open(outputs, "rb") as file:
        answer = pickle.load(file)
    return dict(zip(requests, answer["results"])), answer["imported"], shown


def test_exports_go_to_the_next_integer_version_and_never_overwrite(exports):
    base, first, second, printed = exports
    assert first == str(base / "4") and printed.strip() == second
    assert sorted(os.listdir(base)) == ["3", "4", "5", "notes"]  # no staging folder left
    assert (base / "3" / "keep.txt").read_text() == "an older version"
    for path in (first, second):
        assert tf.saved_model.contains_saved_model(path)
    assert open_model.versions(str(base)) == [3, 4, 5]


@pytest.mark.parametrize("num_frames, message", [
    (0, "num_frames must be an int >= 1; got 0"), (2.0, "num_frames must be an int >= 1"),
    (None, "is a file, not a folder")])
def test_bad_export_arguments_fail_before_writing(tiny_model, tmp_path, num_frames, message):
    base = tmp_path / "base"
    if num_frames is None:
        base.write_text("not a folder")
    with pytest.raises(ValueError, match=message):
        export.export_saved_model(tiny_model, str(base), num_frames=num_frames)
    assert not base.is_dir()


def test_the_config_travels_as_an_asset_with_the_default_temperature(exports):
    _, first, second, _ = exports
    with open(os.path.join(first, "assets", open_model.CONFIG_ASSET)) as file:
        assert vf.VideoFlowConfig.from_json(file.read()) == TINY
    with open(os.path.join(second, "assets", open_model.CONFIG_ASSET)) as file:
        assert vf.VideoFlowConfig.from_json(file.read()) == TINY.replace(temperature=0.6)


def test_a_saved_model_exports_again_with_its_weights_and_config(exports, tmp_path,
                                                                  capsys):
    """Re-exporting gives an older SavedModel today's graphs: same weights, same config
    (its default temperature too), the same samples and scores."""
    _, _, second, _ = exports
    again = tmp_path / "again"
    assert cli.main(["export", "--model", second, "--out", str(again)]) == 0
    assert capsys.readouterr().out.strip() == str(again / "1")
    assert open_model.saved_model_config(str(again)) == TINY.replace(temperature=0.6)
    old, new = tf.saved_model.load(second), tf.saved_model.load(str(again / "1"))
    for a, b in zip(old.weights, new.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    request = sample_request(CONTEXTS, [0.7, 1.0], [5, 6])
    sample = "serving_default"
    np.testing.assert_array_equal(old.signatures[sample](**request)["frames"],
                                  new.signatures[sample](**request)["frames"])
    np.testing.assert_array_equal(old.signatures["log_prob"](video=VIDEOS)["log_prob"],
                                  new.signatures["log_prob"](video=VIDEOS)["log_prob"])


def test_the_server_needs_none_of_our_python(served):
    _, imported, _ = served
    assert imported == []


def test_saved_model_cli_lists_both_signatures_with_dtypes_and_shapes(served):
    _, _, shown = served
    sample, log_prob = (shown.split(f"signature_def['{name}']:")[1].split("signature_def")[0]
                        for name in ("serving_default", "log_prob"))
    for name, dtype, shape in [("context", "DT_UINT8", f"(-1, {CONTEXT}, 8, 8, 3)"),
                               ("temperature", "DT_FLOAT", "(-1)"),
                               ("seed", "DT_INT64", "(-1)")]:
        assert f"inputs['{name}'] tensor_info:\n        dtype: {dtype}\n        shape: {shape}" \
            in sample
    assert f"outputs['frames'] tensor_info:\n        dtype: DT_UINT8\n        shape: " \
           f"(-1, {TARGET}, 8, 8, 3)" in sample
    assert "outputs['invalid_values'] tensor_info:\n        dtype: DT_INT32\n        " \
           "shape: (-1)" in sample
    assert f"inputs['video'] tensor_info:\n        dtype: DT_UINT8\n        shape: " \
           f"(-1, {CONTEXT + TARGET}, 8, 8, 3)" in log_prob
    for name, shape in [("bits_per_pixel", "(-1)"), ("log_prob", "(-1)"),
                        ("frame_bits_per_pixel", f"(-1, {TARGET})")]:
        assert f"outputs['{name}'] tensor_info:\n        dtype: DT_FLOAT\n        shape: " \
               f"{shape}" in log_prob


def test_served_samples_equal_the_python_models_and_do_not_depend_on_the_batch(tiny_model,
                                                                               served):
    results, _, _ = served
    expected = tiny_model.sample(BATCH_CONTEXT, TARGET, temperature=TEMPERATURES,
                                 seed=SEEDS).numpy()
    assert results["batch"]["frames"].dtype == np.uint8
    np.testing.assert_array_equal(results["batch"]["frames"], expected)
    for b in range(3):
        np.testing.assert_array_equal(results[f"row{b}"]["frames"], expected[b:b + 1])
    # Rows 0 and 2 share their context: only their seeds make them differ.
    assert not np.array_equal(expected[0], expected[2])
    three = tiny_model.sample(BATCH_CONTEXT, 3, temperature=TEMPERATURES, seed=SEEDS).numpy()
    np.testing.assert_array_equal(results["three_frames"]["frames"], three)
    invalid = tiny_model.sample_details(BATCH_CONTEXT, TARGET, temperature=TEMPERATURES,
                                        seed=SEEDS).invalid.numpy()
    np.testing.assert_array_equal(results["batch"]["invalid_values"], invalid)


def test_served_log_prob_equals_the_python_models(tiny_model, served):
    results, _, _ = served
    answer = results["log_prob"]
    seed = open_model.LOG_PROB_NOISE_SEED
    np.testing.assert_allclose(answer["frame_bits_per_pixel"],
                               tiny_model.bits_per_pixel(VIDEOS, seed=seed, per_frame=True),
                               rtol=1e-5)
    np.testing.assert_allclose(answer["bits_per_pixel"],
                               tiny_model.bits_per_pixel(VIDEOS, seed=seed), rtol=1e-5)
    np.testing.assert_allclose(answer["log_prob"], tiny_model.log_prob(VIDEOS, seed=seed),
                               rtol=1e-5)
    assert answer["frame_bits_per_pixel"].shape == (3, TARGET)
    for name, value in results["log_prob_row1"].items():
        np.testing.assert_allclose(value, answer[name][1:2], rtol=1e-5)


@pytest.mark.parametrize("request_name, message", [
    ("negative", r"temperature must be a finite number >= 0.*-0\.5"),
    ("nan", "temperature must be a finite number >= 0.*nan"),
    ("infinite", "temperature must be a finite number >= 0.*inf"),
    ("short_seed", "seed must .*one value per video"),
])
def test_bad_requests_fail_with_invalid_argument(served, request_name, message):
    results, _, _ = served
    answer = results[request_name]
    assert isinstance(answer, str), answer  # the InvalidArgumentError's message
    assert re.search(message, answer, flags=re.S), answer


def test_an_empty_batch_gives_empty_outputs_from_every_signature(exports, served):
    """Through tf.saved_model.load (both exports, 2 and 3 sampled frames) and through the
    server's session loader: outputs of batch size 0 with the signature's other
    dimensions, where the model's convolutions alone would fail on a batch of none."""
    _, first, second, _ = exports
    expected = {"frames": ((0, TARGET, 8, 8, 3), np.uint8), "invalid_values": ((0,), np.int32),
                "bits_per_pixel": ((0,), np.float32), "log_prob": ((0,), np.float32),
                "frame_bits_per_pixel": ((0, TARGET), np.float32)}
    for version, frames in [(first, TARGET), (second, 3)]:
        signatures = tf.saved_model.load(version).signatures
        answers = [signatures["serving_default"](
                       **{name: tf.constant(value) for name, value in
                          sample_request(CONTEXTS[:0], [], []).items()}),
                   signatures["log_prob"](video=tf.constant(VIDEOS[:0]))]
        shapes = {name: (tuple(value.shape), value.dtype.as_numpy_dtype)
                  for answer in answers for name, value in answer.items()}
        assert shapes == {**expected, "frames": ((0, frames, 8, 8, 3), np.uint8)}
    results, _, _ = served
    for name in ("empty", "empty_log_prob"):
        assert not isinstance(results[name], str), results[name]  # not an error message
        assert {key: (value.shape, value.dtype) for key, value in results[name].items()} == {
            key: expected[key] for key in results[name]}
    assert sorted(results["empty"]) == ["frames", "invalid_values"]


def test_an_empty_batch_still_needs_one_temperature_and_seed_per_video(exports):
    _, first, _, _ = exports
    signature = tf.saved_model.load(first).signatures["serving_default"]
    for temperature, seed, message in [([1.0], [], "temperature must be a scalar or have "
                                        "one value per video"),
                                       ([], [7], "seed must be a scalar or have one value "
                                        "per video")]:
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            signature(**{name: tf.constant(value) for name, value in
                         sample_request(CONTEXTS[:0], temperature, seed).items()})


def test_signatures_refuse_other_dtypes_and_shapes(exports):
    """tf.saved_model.load's signatures check dtypes like TF Serving but, like it, not
    shapes: the graph checks those itself."""
    _, first, _, _ = exports
    signature = tf.saved_model.load(first).signatures["serving_default"]
    good = sample_request(CONTEXTS, [1.0, 1.0], [1, 2])
    bad = [("context", CONTEXTS.astype(np.float32), "uint8"),
           ("seed", np.array([1, 2], np.int32), "int64"),
           ("context", noise_videos(2, CONTEXT + 1, 0),
            rf"context must be uint8 \[batch, {CONTEXT}, 8, 8, 3\]; got shape.*{CONTEXT + 1}"),
           ("temperature", np.ones([2, 1], np.float32),
            r"temperature must be float32 \[batch\]; got shape")]
    for name, value, message in bad:
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            signature(**{**{k: tf.constant(v) for k, v in good.items()},
                         name: tf.constant(value)})
    log_prob = tf.saved_model.load(first).signatures["log_prob"]
    with pytest.raises(tf.errors.InvalidArgumentError, match="video must be uint8"):
        log_prob(video=tf.constant(VIDEOS[:, :CONTEXT]))


# ------------------------------------------------ VideoFlow.sample with one seed per video

def test_per_video_seeds_and_temperatures_make_each_video_independent_of_its_batch(tiny_model):
    batch = tiny_model.sample(BATCH_CONTEXT, 2, temperature=TEMPERATURES, seed=SEEDS).numpy()
    for b in range(3):
        alone = tiny_model.sample(BATCH_CONTEXT[b:b + 1], 2,
                                  temperature=TEMPERATURES[b:b + 1], seed=SEEDS[b:b + 1])
        np.testing.assert_array_equal(alone, batch[b:b + 1])
    # The same video at another position, with other neighbours.
    moved = tiny_model.sample(BATCH_CONTEXT[[1, 2]], 2, temperature=TEMPERATURES[[1, 2]],
                              seed=SEEDS[[1, 2]])
    np.testing.assert_array_equal(moved, batch[[1, 2]])


def test_a_per_video_temperature_equals_the_same_scalar_temperature(tiny_model):
    seeds = np.array([5, 6, 7])
    np.testing.assert_array_equal(
        tiny_model.sample(BATCH_CONTEXT, 2, temperature=[0.5, 0.5, 0.5], seed=seeds),
        tiny_model.sample(BATCH_CONTEXT, 2, temperature=0.5, seed=seeds))
    zero = tiny_model.sample(BATCH_CONTEXT, 2, temperature=[0.0, 1.0, 0.0],
                             seed=seeds).numpy()
    np.testing.assert_array_equal(zero[[0, 2]], tiny_model.sample(
        BATCH_CONTEXT[[0, 2]], 2, temperature=0.0, seed=np.array([8, 9])))  # the means


def test_seeds_differ_in_their_high_bits_and_a_scalar_seed_gives_each_video_a_stream(
        tiny_model):
    context = BATCH_CONTEXT[:1]
    low, high = (tiny_model.sample(context, 2, seed=np.array([s], np.int64)).numpy()
                 for s in (3, 2 ** 40 + 3))
    assert not np.array_equal(low, high)
    twice = tiny_model.sample(CONTEXTS[[0, 0]], 2, seed=4).numpy()
    assert not np.array_equal(twice[0], twice[1])
    np.testing.assert_array_equal(twice, tiny_model.sample(CONTEXTS[[0, 0]], 2, seed=4))


@pytest.mark.parametrize("kwargs, message", [
    (dict(seed=np.array([1, 2])), r"seed must be a scalar or have one value per video \(\[3\]\)"),
    (dict(seed=np.array([1.0, 2.0, 3.0])), "seed must be an int or one integer per video"),
    (dict(temperature=[1.0, 1.0]), r"temperature must be a scalar or have one value per video"),
    (dict(temperature=[1.0, -1.0, 1.0]), "temperature must be a finite number >= 0"),
    (dict(temperature=float("nan")), "temperature must be a finite number >= 0"),
    (dict(temperature=[[1.0]]), "temperature must be a finite number >= 0.*got shape"),
])
def test_bad_per_video_arguments_raise_value_errors(tiny_model, kwargs, message):
    with pytest.raises(ValueError, match=message):
        tiny_model.sample(BATCH_CONTEXT, 2, **kwargs)


# ------------------------------------------------ REST bodies (videoflow-tf rest-client)

def as_served(request, signature):
    """The inputs TF Serving builds from a JSON request: arrays of the signature's dtypes."""
    specs = signature.structured_input_signature[1]
    return {name: tf.constant(np.asarray(value), specs[name].dtype)
            for name, value in request["inputs"].items()}


def test_rest_requests_encode_npy_and_gif_videos_in_columnar_format(exports, tmp_path):
    base, _, _, _ = exports
    videos = noise_videos(2, CONTEXT + TARGET, seed=3)
    np.save(tmp_path / "clip.npy", videos)
    assert cli.main(["rest-client", "request", "--model", str(base), "--video",
                             str(tmp_path / "clip.npy"), "--temperature", "0.7", "--seed",
                             "5", "--out", str(tmp_path / "sample.json")]) == 0
    body = json.loads((tmp_path / "sample.json").read_text())
    assert body["signature_name"] == "serving_default"
    assert sorted(body["inputs"]) == ["context", "seed", "temperature"]
    np.testing.assert_array_equal(np.array(body["inputs"]["context"]), videos[:, :CONTEXT])
    assert body["inputs"]["temperature"] == [0.7, 0.7] and body["inputs"]["seed"] == [5, 6]

    squares = moving_squares(1, CONTEXT + TARGET + 1)[0]  # two colours: exact in a GIF
    visualize.save_gif(str(tmp_path / "clip.gif"), squares)
    assert cli.main(["rest-client", "request", "--model", str(base), "--video",
                             str(tmp_path / "clip.gif"), "--signature", "log_prob", "--out",
                             str(tmp_path / "log_prob.json")]) == 0
    body = json.loads((tmp_path / "log_prob.json").read_text())
    assert body["signature_name"] == "log_prob" and list(body["inputs"]) == ["video"]
    np.testing.assert_array_equal(np.array(body["inputs"]["video"]),
                                  squares[None, :CONTEXT + TARGET])


def test_rest_request_refuses_a_video_of_another_size(exports, tmp_path, capsys):
    base, _, _, _ = exports
    np.save(tmp_path / "big.npy", np.zeros((4, 16, 16, 3), np.uint8))
    assert cli.main(["rest-client", "request", "--model", str(base), "--video",
                             str(tmp_path / "big.npy"), "--out",
                             str(tmp_path / "r.json")]) == 2
    assert "must be uint8 [T, 8, 8, 3] or [N, T, 8, 8, 3]; got uint8 [4, 16, 16, 3]" \
        in capsys.readouterr().err


def test_rest_request_refuses_an_empty_batch_which_json_cannot_carry(exports, tmp_path,
                                                                    capsys):
    base, _, _, _ = exports
    np.save(tmp_path / "none.npy", np.zeros((0, CONTEXT + TARGET, 8, 8, 3), np.uint8))
    assert cli.main(["rest-client", "request", "--model", str(base), "--video",
                     str(tmp_path / "none.npy"), "--out", str(tmp_path / "r.json")]) == 2
    error = capsys.readouterr().err
    assert len(error.strip().splitlines()) == 1
    assert "holds no videos: a request needs at least one" in error
    assert not (tmp_path / "r.json").exists()


def test_rest_response_of_the_saved_model_decodes_to_a_gif(tiny_model, exports, tmp_path,
                                                           capsys):
    base, first, _, _ = exports
    videos = noise_videos(2, CONTEXT, seed=4)
    request = rest_client.request_body(videos, TINY, temperature=0.7, seed=5)
    signatures = tf.saved_model.load(first).signatures
    frames = signatures["serving_default"](
        **as_served(json.loads(json.dumps(request)), signatures["serving_default"]))["frames"]
    np.testing.assert_array_equal(frames, tiny_model.sample(
        videos, TARGET, temperature=[0.7, 0.7], seed=np.array([5, 6])))
    (tmp_path / "request.json").write_text(json.dumps(request))
    # TF Serving names no output when a signature has only one.
    (tmp_path / "response.json").write_text(json.dumps({"outputs": frames.numpy().tolist()}))
    assert cli.main(["rest-client", "response", "--request", str(tmp_path / "request.json"),
                             "--response", str(tmp_path / "response.json"), "--out",
                             str(tmp_path / "future.gif")]) == 0
    with Image.open(tmp_path / "future.gif") as gif:
        shown = np.stack([np.asarray(gif.convert("RGB")) for _ in rest_client._frames(gif)])
    expected = visualize.video_grid(np.concatenate([videos, frames], axis=1)[:, None], CONTEXT,
                                    visualize.default_scale(8))
    np.testing.assert_array_equal(shown, expected)
    named = rest_client.decode_response({"outputs": {"frames": frames.numpy().tolist()}},
                                        request)
    np.testing.assert_array_equal(named["frames"], frames)

    scores = signatures["log_prob"](video=tf.constant(noise_videos(1, CONTEXT + TARGET, 5)))
    (tmp_path / "log_prob.json").write_text(json.dumps({"signature_name": "log_prob"}))
    (tmp_path / "scores.json").write_text(json.dumps(
        {"outputs": {name: value.numpy().tolist() for name, value in scores.items()}}))
    capsys.readouterr()
    assert cli.main(["rest-client", "response", "--request", str(tmp_path / "log_prob.json"),
                             "--response", str(tmp_path / "scores.json")]) == 0
    assert f"video 0: {float(scores['bits_per_pixel'][0]):.4f} bits per pixel" \
        in capsys.readouterr().out

    # Each request with the other signature's answer.
    for request_file, response_file, other in [("request.json", "scores.json", "log_prob"),
                                               ("log_prob.json", "response.json", "frames")]:
        assert cli.main(["rest-client", "response", "--request", str(tmp_path / request_file),
                                 "--response", str(tmp_path / response_file), "--out",
                                 str(tmp_path / "x.gif")]) == 2
        error = capsys.readouterr().err
        assert len(error.strip().splitlines()) == 1 and other in error
        assert "is it the answer to another request?" in error

    (tmp_path / "error.json").write_text(json.dumps({"error": "temperature must be ..."}))
    assert cli.main(["rest-client", "response", "--request", str(tmp_path / "request.json"),
                             "--response", str(tmp_path / "error.json"), "--out",
                             str(tmp_path / "x.gif")]) == 2
    assert "the model server answered with an error: temperature must be" \
        in capsys.readouterr().err


def assert_serves_the_python_model(model, tmp_path):
    """The SavedModel of `model`: log_prob answers in float32 and equals the Python
    model's at the signature's fixed noise, and serving_default samples its frames."""
    loaded = tf.saved_model.load(export.export_saved_model(model, str(tmp_path)))
    answer = loaded.signatures["log_prob"](video=tf.constant(VIDEOS))
    assert answer["log_prob"].dtype == tf.float32
    np.testing.assert_allclose(answer["log_prob"],
                               model.log_prob(VIDEOS, seed=open_model.LOG_PROB_NOISE_SEED),
                               rtol=1e-5)
    frames = loaded.signatures["serving_default"](**sample_request(CONTEXTS, [1.0, 0.5], [3, 4]))
    np.testing.assert_array_equal(
        frames["frames"],
        model.sample(CONTEXTS, TARGET, temperature=[1.0, 0.5], seed=np.array([3, 4])))


def test_a_variational_dequantisation_model_serves_its_own_bound(tmp_path):
    """q(u | x) inside the SavedModel, moved off uniform: its bound and its samples."""
    model = vf.VideoFlow(TINY.replace(dequantization="variational"))
    model.initialize(noise_videos(4, CONTEXT + TARGET, seed=5))
    perturb(model.dequantizer, seed=1, scale=0.1)
    assert_serves_the_python_model(model, tmp_path)


def test_a_mixed_precision_model_exports_and_serves_its_own_likelihood(tmp_path):
    """bfloat16 coupling networks inside the SavedModel."""
    model = vf.VideoFlow(TINY.replace(mixed_precision=True))
    model.initialize(noise_videos(4, CONTEXT + TARGET, seed=5))
    assert_serves_the_python_model(model, tmp_path)
