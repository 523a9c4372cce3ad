"""SchNet: the torch network, its NumPy path for CPU inference, configuration and training."""
