"""videoflow-tf: VideoFlow, a flow-based generative model for video.

`import videoflow_tf as vf` registers the TFDS builders `bair_action_free` and
`stochastic_shapes` and exposes the model API. The package's folders, lowest first:
`data` (tf.data pipelines), `model` (the paper's model), `analysis` (judging and drawing
videos), `training` (the train command, run folders, opening trained models) and
`commands` (the other commands); `config` and `usage` serve them all.
"""
import sys

from videoflow_tf import _quiet  # noqa: F401  (must precede every TensorFlow import)
from videoflow_tf.version import __version__  # noqa: F401

from videoflow_tf.config import VideoFlowConfig, get_config  # noqa: E402
from videoflow_tf import data  # noqa: E402  (importing it registers the TFDS builders)
from videoflow_tf.model import VideoFlow, bijectors, distribute, flow  # noqa: E402
from videoflow_tf.model.optim import make_optimizer  # noqa: E402
from videoflow_tf.training import callbacks, open_model, train  # noqa: E402
from videoflow_tf.commands import export  # noqa: E402

# Modules users reach as vf.NAME, importable by the paths they had before the package had
# folders (videoflow_tf.callbacks, ...), so that scripts written then keep working.
for _module in (bijectors, flow, distribute, callbacks, open_model, train, export):
    sys.modules[f"videoflow_tf.{_module.__name__.rsplit('.', 1)[1]}"] = _module
