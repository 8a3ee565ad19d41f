"""TFDS builders of videoflow-tf, installed as the package ``videoflow_tf.datasets``.

The folder is called ``datasets`` in the source tree, but the name ``datasets``
belongs to another popular package, so it refuses to be imported under it.
"""
if __name__ != "videoflow_tf.datasets":
    raise ImportError(
        f"videoflow-tf's TFDS builders cannot be imported as {__name__!r}; "
        "install videoflow-tf and use `import videoflow_tf` (it registers "
        "'bair_action_free' and 'stochastic_shapes' with tfds)."
    )
