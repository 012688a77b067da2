"""The Prefect task runner a config asks for: threads here, or Ray (local or an existing cluster)."""

from __future__ import annotations

from prefect.task_runners import ThreadPoolTaskRunner

from voxemoset.config import OrchestrationConfig


def make_task_runner(cfg: OrchestrationConfig):
    """A fresh task runner for one flow run."""
    if cfg.task_runner == "ray":
        from prefect_ray import RayTaskRunner

        init = {"include_dashboard": False}
        if cfg.ray_num_cpus:
            init["num_cpus"] = cfg.ray_num_cpus
        return RayTaskRunner(address=cfg.ray_address, init_kwargs=init)
    return ThreadPoolTaskRunner(max_workers=cfg.max_workers)
