"""tabpilot: a table and a target column in, a tracked, registered, servable model out.

    from tabpilot import AutoML
    model = AutoML(time_budget=60).fit(X, y)

`AutoML` and `load` are imported on first use: the CLI imports this package and starts fast.
"""
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from tabpilot import old_paths

try:  # pyproject.toml's, as installed: a second copy here went stale (0.3.0 in 0.3.1's models' requirements)
    __version__ = version("tabpilot")
except PackageNotFoundError:  # a checkout on sys.path, not installed
    __version__ = "0+unknown"
__all__ = ["AutoML", "load"]
old_paths.install()  # models pickled by 0.2 name modules that have moved since


def __getattr__(name: str) -> Any:
    if name in __all__:
        from tabpilot import api

        return getattr(api, name)
    raise AttributeError(f"module 'tabpilot' has no attribute '{name}'")
