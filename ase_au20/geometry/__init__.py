"""Pure structure analysis: fingerprints, point groups, g(r), metrics, generated clusters.

Nothing here loads a model or touches a file; every other layer may import it.
"""
