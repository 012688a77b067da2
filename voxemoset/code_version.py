"""Which code built an output: voxemoset's version and, from a checkout, the git commit (cards record it)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import voxemoset


def code_version() -> dict:
    """voxemoset's version plus the git commit (and whether the tree was dirty) when built from a checkout."""
    info: dict = {"voxemoset": voxemoset.__version__, "git_commit": None, "git_dirty": None}
    repo = Path(voxemoset.__file__).resolve().parents[1]
    if not (repo / ".git").exists():
        return info
    try:
        sha = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return info
    if sha.returncode == 0:
        info["git_commit"] = sha.stdout.strip()
        info["git_dirty"] = bool(dirty.stdout.strip()) if dirty.returncode == 0 else None
    return info


def commit_label(info: dict) -> str:
    """The commit as a card states it: the hash, "unknown" outside a checkout, and whether the tree was dirty."""
    commit = info["git_commit"] or "unknown"
    return commit + " (with uncommitted changes)" if info["git_dirty"] else commit
