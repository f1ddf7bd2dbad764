"""Repository-wide pytest configuration.

The doctests of the Numba backend's modules need Numba (an optional extra,
``pip install "funcnet[numba]"``): without it they are not collected.
"""

import importlib.util

collect_ignore_glob = []
if importlib.util.find_spec("numba") is None:
    collect_ignore_glob += ["funcnet/backends/numba_*.py"]
