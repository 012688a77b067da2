"""One seed derivation for every part that needs a seed per item."""

from __future__ import annotations

import hashlib


def derive_seed(*parts: object) -> int:
    """A 31-bit seed that is a pure function of `parts` (e.g. base seed, image id, attempt), joined with ':'."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") & 0x7FFFFFFF
