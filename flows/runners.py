"""The Prefect task runner a config asks for: threads here, or Ray (local or an existing cluster)."""

from __future__ import annotations

from prefect.task_runners import ThreadPoolTaskRunner

from voxemoset.config import OrchestrationConfig


def _api_url(local: bool) -> str | None:
    """The Prefect API this flow run reports to: the configured one, or (for a local cluster only) the
    temporary server Prefect started for this process when none is configured."""
    from prefect.settings import PREFECT_API_URL

    if url := PREFECT_API_URL.value():
        return url
    if not local:
        return None
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()  # a per-process singleton: the one `get_client` started, if any
    return server.api_url if server.running else None


def make_task_runner(cfg: OrchestrationConfig):
    """A fresh task runner for one flow run."""
    if cfg.task_runner == "ray":
        from prefect_ray import RayTaskRunner

        init = {"include_dashboard": False}
        if cfg.ray_num_cpus:
            init["num_cpus"] = cfg.ray_num_cpus
        # Ray workers do not inherit Prefect's settings: without the API URL each would start a temporary
        # server of its own (seconds per worker) and its task runs would not show in this flow run.
        if url := _api_url(local=cfg.ray_address is None):
            init["runtime_env"] = {"env_vars": {"PREFECT_API_URL": url}}
        return RayTaskRunner(address=cfg.ray_address, init_kwargs=init)
    return ThreadPoolTaskRunner(max_workers=cfg.max_workers)
