"""The `videoflow-tf` commands but `train` (in `videoflow_tf.training`): `cli` dispatches
them all."""
