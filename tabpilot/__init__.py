"""tabpilot: a table and a target column in, a tracked, registered, servable model out."""

__version__ = "0.2.0"
