"""videoflow-tf's package layout; the project's metadata is in pyproject.toml.

The layout is built here from the lists below. Two top-level folders of the repository
install inside the `videoflow_tf` package:

- `datasets/` (the TFDS builders) installs as `videoflow_tf.datasets`, so nothing is ever
  importable as plain `datasets` (that name belongs to another popular package);
- `savedmodels/` installs as `videoflow_tf.savedmodels` with the shipped model's every
  version folder, so `videoflow-tf sample` finds its default model after a wheel install
  from any working directory, as it does in a checkout.
"""
from setuptools import setup

BUILDERS = ["bair_action_free", "stochastic_shapes"]
SHIPPED_MODELS = ["stochastic_shapes", "stochastic_shapes_32"]

setup(
    packages=["videoflow_tf", "videoflow_tf.data", "videoflow_tf.model",
              "videoflow_tf.model.bijectors", "videoflow_tf.analysis", "videoflow_tf.training",
              "videoflow_tf.commands", "videoflow_tf.datasets", "videoflow_tf.savedmodels"]
    + [f"videoflow_tf.datasets.{name}" for name in BUILDERS],
    package_dir={"videoflow_tf": "videoflow_tf", "videoflow_tf.datasets": "datasets",
                 "videoflow_tf.savedmodels": "savedmodels"},
    package_data={
        **{f"videoflow_tf.datasets.{name}": ["checksums.tsv", "dummy_data/**/*", "*.md"]
           for name in BUILDERS},
        "videoflow_tf.savedmodels": [f"{name}/**/*" for name in SHIPPED_MODELS],
    },
)
