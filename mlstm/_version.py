"""The package version (one place: setup.cfg reads it, checkpoints record it)."""
__version__ = "0.1.0"
