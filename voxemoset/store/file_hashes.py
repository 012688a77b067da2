"""A file's sha256, remembered across runs by (path, size, mtime, inode): a model is keyed by its weights' content,
yet a 15 GB checkpoint is read once per change, not once per plan.

The memo lives in `$VOXEMOSET_CACHE_DIR` (default `~/.cache/voxemoset`), one JSON file written whole; two processes
writing at once may drop each other's new entries, which are then hashed again: never a wrong hash, since an entry
counts only while the file's size, mtime and inode are what they were.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from voxemoset.store.atomic import write_json
from voxemoset.store.keys import hash_file

_LOCK = threading.Lock()
_MEMO: dict[str, list] | None = None
MEMO_NAME = "file-sha256.json"


def memo_path() -> Path:
    """Where the memo is kept."""
    root = os.environ.get("VOXEMOSET_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return Path(root) / ("" if os.environ.get("VOXEMOSET_CACHE_DIR") else "voxemoset") / MEMO_NAME


def _memo() -> dict[str, list]:
    global _MEMO
    if _MEMO is None:
        try:
            data = json.loads(memo_path().read_text())
            # Files gone since (a test's temp models, an old download) are forgotten, so the memo stays small.
            _MEMO = {k: v for k, v in data.items() if os.path.exists(k)} if isinstance(data, dict) else {}
        except (OSError, ValueError):
            _MEMO = {}
    return _MEMO


def file_sha256(path: Path) -> str:
    """sha256 of `path`'s bytes; read again only when its size, mtime or inode changed since it was last hashed."""
    path = Path(path).resolve()
    st = path.stat()
    stamp = [st.st_size, st.st_mtime_ns, st.st_ino]
    with _LOCK:
        known = _memo().get(str(path))
        if known is not None and known[:3] == stamp:
            return known[3]
    digest = hash_file(path)
    with _LOCK:
        memo = _memo()
        memo[str(path)] = [*stamp, digest]
        try:
            write_json(memo_path(), memo)
        except OSError:  # a read-only home: hash again next time, nothing worse
            pass
    return digest
