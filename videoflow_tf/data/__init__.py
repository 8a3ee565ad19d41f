"""Videos for the model: `pipelines` (tf.data pipelines from the TFDS datasets; importing
it registers the builders) and `videos` (numpy videos and what they show, for the
commands). `vf.data.make_dataset` and the rest of `pipelines`' API are here too."""
from videoflow_tf.data.pipelines import (  # noqa: F401
    DATASETS, check_dataset, distribute_dataset, initialization_videos, make_dataset, videos_of)
