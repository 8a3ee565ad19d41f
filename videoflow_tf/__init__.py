"""videoflow-tf: VideoFlow, a flow-based generative model for video.

`import videoflow_tf as vf` registers the TFDS builders `bair_action_free` and
`stochastic_shapes` and exposes the model API.
"""
from videoflow_tf import _quiet  # noqa: F401  (must precede every TensorFlow import)

__version__ = "0.1.0"

from videoflow_tf.config import VideoFlowConfig, get_config  # noqa: E402
from videoflow_tf.optim import make_optimizer  # noqa: E402
from videoflow_tf import data  # noqa: E402  (importing it registers the TFDS builders)
from videoflow_tf import bijectors, flow  # noqa: E402,F401
from videoflow_tf.model import VideoFlow  # noqa: E402
from videoflow_tf import callbacks  # noqa: E402
from videoflow_tf import distribute  # noqa: E402,F401  (vf.distribute: strategies by name)
from videoflow_tf import train  # noqa: E402,F401  (vf.train.train: the train command from Python)
from videoflow_tf import open_model  # noqa: E402,F401  (vf.open_model.load_model: a trained run)
from videoflow_tf import export  # noqa: E402,F401  (vf.export.export_saved_model: TF Serving)
