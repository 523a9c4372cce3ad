"""Single source of the package version (read by pyproject and model cards)."""

__version__ = "0.1.0"
