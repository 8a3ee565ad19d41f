"""Judging and drawing videos: how sampled stochastic shapes move (`motion`, and
`strict_motion` against the renderer), and grids of frames as GIF and PNG (`visualize`)."""
