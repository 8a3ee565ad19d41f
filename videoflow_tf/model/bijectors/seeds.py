"""Seeds of sub-layers derived from one user seed."""
import numpy as np


def derived(seed, *path):
    """A seed for the sub-layer at `path` (a tuple of ints), or None when `seed` is None.

    Distinct paths give independent streams (numpy's SeedSequence), so seeded
    layers never share random values.
    """
    if seed is None:
        return None
    return int(np.random.SeedSequence([seed, *path]).generate_state(1)[0] % 2**31)
