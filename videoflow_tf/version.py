"""The version of videoflow-tf (pyproject.toml reads it from here)."""
__version__ = "0.1.0"
