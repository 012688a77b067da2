"""Serve every flow as a deployment, so a Prefect UI (`prefect server start`) can run them."""

from __future__ import annotations

import os
from pathlib import Path

from prefect import serve

from flows.corpus_flow import corpus_flow
from flows.stage_flows import STAGE_FLOWS, build, report_flow
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


def deployments(config_path: str | None = None) -> list:
    """One deployment per flow; `config_path` becomes the default parameter when given."""
    params = {"config_path": config_path} if config_path else None
    deps = [build.to_deployment(name="voxemoset", parameters=params)]
    deps += [f.to_deployment(name="voxemoset", parameters=params) for f in (*STAGE_FLOWS.values(), report_flow)]
    deps.append(corpus_flow.to_deployment(name="voxemoset", parameters=params))  # `name` is asked for at each run
    return deps


def serve_all(config_path: str | None = None, limit: int | None = None) -> None:
    """Block, serving the deployments (runs come from the UI, the API or `prefect deployment run`)."""
    serve(*deployments(config_path), limit=limit)
