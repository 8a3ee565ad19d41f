"""Test-session settings shared by tests/ and the TFDS builder tests in datasets/."""
import importlib
import os
import pathlib

import pytest

# pytest-xdist runs one worker per core; give each worker's TensorFlow one
# thread so the workers do not fight over the same cores.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")


# The TFDS builder tests live in datasets/<name>/ (TFDS's layout), but that
# folder installs as `videoflow_tf.datasets` and refuses to be imported as
# plain `datasets`, which is what pytest's package and importlib collection
# would do. So its folders are collected as plain directories (no __init__.py
# import), and its test modules are imported under their installed name; the
# builders they import then register exactly once.
_BUILDERS_DIR = pathlib.Path(__file__).resolve().parent / "datasets"


def _in_builders_dir(path):
    path = pathlib.Path(path).resolve()
    return path == _BUILDERS_DIR or _BUILDERS_DIR in path.parents


class _InstalledNameModule(pytest.Module):
    def _getobj(self):
        relative = self.path.resolve().relative_to(_BUILDERS_DIR).with_suffix("")
        module = importlib.import_module(".".join(("videoflow_tf", "datasets") + relative.parts))
        if pathlib.Path(module.__file__).resolve() != self.path.resolve():
            raise self.CollectError(f"{module.__name__} imports {module.__file__}, not {self.path}: "
                                    "install videoflow-tf in editable mode (pip install -e .).")
        return module


def pytest_collect_directory(path, parent):
    if _in_builders_dir(path):
        return pytest.Dir.from_parent(parent, path=path)
    return None


def pytest_pycollect_makemodule(module_path, parent):
    if _in_builders_dir(module_path):
        return _InstalledNameModule.from_parent(parent, path=module_path)
    return None
