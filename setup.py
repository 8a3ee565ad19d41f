"""videoflow-tf: VideoFlow (flow-based video prediction) in TensorFlow 2, Keras 3 and TFP."""
from setuptools import setup

# The TFDS builders live in the top-level `datasets/` folder but install as
# `videoflow_tf.datasets`, so nothing is ever importable as plain `datasets`
# (that name belongs to another popular package).
BUILDERS = ["bair_action_free", "stochastic_shapes"]

setup(
    name="videoflow-tf",
    version="0.1.0",
    description="VideoFlow: a flow-based generative model for video, in TF2/Keras 3/TFP",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=["videoflow_tf", "videoflow_tf.bijectors", "videoflow_tf.datasets"]
    + [f"videoflow_tf.datasets.{name}" for name in BUILDERS],
    package_dir={"videoflow_tf": "videoflow_tf", "videoflow_tf.datasets": "datasets"},
    package_data={f"videoflow_tf.datasets.{name}": ["checksums.tsv", "dummy_data/**/*", "*.md"]
                  for name in BUILDERS},
    install_requires=[
        "tensorflow>=2.21,<2.22",
        "tensorflow-probability>=0.25,<0.26",
        "tf-keras>=2.21,<2.22",
        "keras>=3.10",
        "tensorflow-datasets>=4.9.10,<4.10",
        "importlib_resources",
        "numpy",
        "pillow",
    ],
    extras_require={"test": ["pytest", "pytest-xdist", "dill"]},
    entry_points={"console_scripts": ["videoflow-tf=videoflow_tf.cli:main"]},
)
