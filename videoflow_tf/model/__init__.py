"""The paper's model, one file per idea.

    videoflow.py       VideoFlow, the keras.Model: log p(x_t | x_<t), training step, encode
    flow.py            the per-frame multi-scale Glow (bijectors/: its invertible steps;
                       bijectors/coupling_network.py: the coupling network)
    prior.py           the conditional Gaussian prior of every level (equation 8)
    mixture_prior.py   the mixture-of-Gaussians top prior, its initialisation and revival
    latent_encoders.py the prior's networks
    loss.py            bits per pixel, and beta-NLL's gradient for the prior
    sampling.py        sampling futures frame by frame
    dequantization.py, pixels.py   the map between pixels and the flow's input
    optim.py, distribute.py        Adam with warm-up; tf.distribute and global batches
"""
from videoflow_tf.model.videoflow import VideoFlow  # noqa: F401
