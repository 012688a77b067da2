"""`voxemoset deploy`: what must hold before the flows are served."""

from __future__ import annotations

import os
from pathlib import Path

from voxemoset.errors import UserError


def require_server(config: Path | None) -> str | None:
    """The config's absolute path (or None) once a Prefect server is configured and the config exists."""
    if not os.environ.get("PREFECT_API_URL"):
        raise UserError(
            "no Prefect server configured: run `prefect server start` and "
            "`export PREFECT_API_URL=http://127.0.0.1:4200/api`, then `voxemoset deploy` again"
        )
    if config is not None and not config.is_file():
        raise UserError(f"config file not found: {config}")
    return str(config.resolve()) if config else None
