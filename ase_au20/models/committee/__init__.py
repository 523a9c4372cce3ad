"""A committee of registered models: a weighted average whose member disagreement is its spread."""
