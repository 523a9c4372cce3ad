"""SOAP + kernel ridge regression: descriptors, kernels, the model, its CV search and training."""
