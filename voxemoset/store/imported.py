"""A module some thread has already imported, whole: never a half-initialised one from `sys.modules`.

A module enters `sys.modules` when its import *starts*. While one shard thread is still running
`import torch` (seconds, on a first Whisper load), another that read `sys.modules["torch"]` would get a
module without `get_num_threads` or `cuda` yet ("partially initialized module 'torch'").
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType


def imported(name: str) -> ModuleType | None:
    """Module `name` once fully initialised if any thread imported (or is importing) it; None if none has.

    Imports nothing no thread asked for: callers ask "is torch in use?" and must not pay seconds (or pull in
    CUDA) to learn that it is not. When it is in `sys.modules`, `importlib.import_module` takes the
    module's import lock (importlib._bootstrap._find_and_load, Python 3.11), so it waits for the thread
    still importing it and returns the finished module. (Had that import failed, the module is gone from
    `sys.modules` again and this call imports it afresh, raising the same error rather than returning half
    a module.)
    """
    if sys.modules.get(name) is None:  # never imported, or blocked on purpose (a None entry)
        return None
    return importlib.import_module(name)
