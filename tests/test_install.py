"""A wheel built from this checkout, installed into a new virtualenv, samples with the
shipped model from a folder outside the checkout, as after a user's `pip install .`.

Marked `install` and left out of the README's test command (pytest.ini deselects it): it
installs TensorFlow and the rest of requirements.txt into its own virtualenv, about a
minute from pip's cache and several from the package index. `.ci/run` runs it with
`python -m pytest -m install`.
"""
import email.parser
import json
import os
import pathlib
import shutil
import subprocess
import sys
import zipfile
from unittest import mock

import pytest
from PIL import Image

import videoflow_tf  # noqa: F401  (before TensorFlow: imports it quietly)
import tensorflow_datasets as tfds

from videoflow_tf.datasets.stochastic_shapes import stochastic_shapes_dataset_builder as shapes

pytestmark = pytest.mark.install

CHECKOUT = pathlib.Path(__file__).resolve().parents[1]
SHIPPED_MODELS = CHECKOUT / "savedmodels"
DEFAULT_MODEL = SHIPPED_MODELS / "stochastic_shapes"  # what `sample` uses with no --model
INSTALL_TIMEOUT_S = 1800  # TensorFlow's wheel alone is several hundred MB from the index


def _run(args, **kwargs):
    result = subprocess.run([str(arg) for arg in args], capture_output=True, text=True,
                            **kwargs)
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result


def _copy_of_the_checkout(destination):
    """The checkout's files as a clone would have them plus new ones not yet committed, so
    that neither a stale build/ folder nor a virtualenv inside the checkout gets in."""
    listing = _run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                   cwd=CHECKOUT).stdout
    for name in filter(None, listing.split("\0")):
        if (CHECKOUT / name).is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(CHECKOUT / name, destination / name)
    return destination


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """The bin/ folder of a new virtualenv with its bundled pip, not upgraded."""
    path = tmp_path_factory.mktemp("venv")
    _run([sys.executable, "-m", "venv", path])
    return path / "bin"


@pytest.fixture(scope="module")
def wheel(venv, tmp_path_factory):
    source = _copy_of_the_checkout(tmp_path_factory.mktemp("checkout"))
    wheels = tmp_path_factory.mktemp("wheels")
    _run([venv / "python", "-m", "pip", "wheel", "--no-deps", "--wheel-dir", wheels, source],
         timeout=INSTALL_TIMEOUT_S)
    (path,) = wheels.glob("videoflow_tf-*.whl")
    return path


def test_the_wheel_holds_the_shipped_models_and_the_builders_data_under_videoflow_tf(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    model_files = [path.relative_to(SHIPPED_MODELS).as_posix()
                   for path in SHIPPED_MODELS.rglob("*")
                   if path.is_file() and "__pycache__" not in path.parts]
    assert any(name.startswith("stochastic_shapes/") and name.endswith("/saved_model.pb")
               for name in model_files)
    for name in model_files:  # every shipped model's every file, its card included
        assert f"videoflow_tf/savedmodels/{name}" in names
    for builder in ("bair_action_free", "stochastic_shapes"):
        assert f"videoflow_tf/datasets/{builder}/{builder}_dataset_builder.py" in names
    assert "videoflow_tf/datasets/bair_action_free/checksums.tsv" in names
    top_level = {name.split("/")[0] for name in names}
    assert {name for name in top_level if not name.endswith(".dist-info")} == {"videoflow_tf"}


def test_the_wheel_carries_the_licence_and_the_metadata_of_a_published_package(wheel):
    archive = zipfile.ZipFile(wheel)
    (info,) = {name.split("/")[0] for name in archive.namelist()
               if name.split("/")[0].endswith(".dist-info")}
    metadata = email.parser.Parser().parsestr(archive.read(f"{info}/METADATA").decode())
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata["License-File"] == "LICENSE"
    licence = archive.read(f"{info}/licenses/LICENSE")
    assert licence == (CHECKOUT / "LICENSE").read_bytes()
    assert b"Apache License\n                           Version 2.0, January 2004" in licence
    urls = dict(value.split(", ", 1) for value in metadata.get_all("Project-URL"))
    assert urls["Paper"] == "https://arxiv.org/abs/1903.01434"
    classifiers = metadata.get_all("Classifier")
    for version in ("3.11", "3.12"):  # those the README says it is tested on
        assert f"Programming Language :: Python :: {version}" in classifiers
    assert "video prediction" in metadata["Keywords"].split(",")
    assert metadata["Author"]


def test_the_installed_wheel_samples_with_the_shipped_model_from_outside_the_checkout(
        venv, wheel, tmp_path):
    _run([venv / "python", "-m", "pip", "install", "--constraint",
          CHECKOUT / "requirements.txt", wheel], timeout=INSTALL_TIMEOUT_S)
    data_dir = tmp_path / "tfds"
    with mock.patch.object(shapes.Builder, "SPLIT_SIZES", {"train": 1, "test": 2}):
        tfds.builder("stochastic_shapes", data_dir=str(data_dir)).download_and_prepare()
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    # A user's environment: the installed package, with its own log-level default.
    environment = {name: value for name, value in os.environ.items()
                   if name not in ("PYTHONPATH", "TF_CPP_MIN_LOG_LEVEL")}
    result = _run([venv / "videoflow-tf", "sample", "--out", "samples.gif", "--data-dir",
                   data_dir, "--num-contexts", "2", "--samples-per-context", "2"],
                  cwd=outside, env=environment, timeout=600)
    assert result.stderr == ""
    site_packages = _run([venv / "python", "-c", "import sysconfig; "
                          "print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    latest = max(int(path.name) for path in DEFAULT_MODEL.iterdir() if path.name.isdigit())
    installed_model = pathlib.Path(site_packages, "videoflow_tf", "savedmodels",
                                   "stochastic_shapes", str(latest))
    assert f"with SavedModel {installed_model}\n" in result.stdout
    config = json.loads((DEFAULT_MODEL / str(latest) / "assets" / "config.json").read_text())
    with Image.open(outside / "samples.gif") as gif:
        assert gif.n_frames == config["num_context_frames"] + config["num_target_frames"]
    assert (outside / "samples.png").is_file()
