"""SchNet: the torch network, its NumPy single-structure path, configuration and training."""
