"""The Prefect task runner a config asks for: threads here, or Ray (local or an existing cluster)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

from prefect.task_runners import ThreadPoolTaskRunner

from voxemoset.config import OrchestrationConfig
from voxemoset.quiet import is_quiet, quiet_terminal_handlers


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


@contextmanager
def _loopback_node() -> Iterator[None]:
    """While a local Ray cluster starts, its node address is 127.0.0.1, so every server binds to loopback only.

    ray.init turns a `_node_ip_address` of 127.0.0.1 into this host's network address unless Ray considers
    clusters disabled (its macOS/Windows default, ray_constants.ENABLE_RAY_CLUSTER); then GCS, raylet, object
    manager, workers and agents bind to the node address or localhost instead of 0.0.0.0. The flag is only read
    while the driver picks that address: the processes started get `--node-ip-address=127.0.0.1` on their
    command lines, and connecting to a remote cluster later is unaffected.
    """
    import ray

    # An attribute, not `import ray._private.ray_constants`: prefect_ray imports ray lazily (LazyLoader), and
    # importing a submodule of the not-yet-loaded package leaves ray._private without its submodules.
    ray_constants = ray._private.ray_constants
    before = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = before


@cache
def _loopback_runner_class() -> type:
    """RayTaskRunner whose local cluster binds to loopback (a class made once; prefect_ray imports Ray)."""
    from prefect_ray import RayTaskRunner

    class LoopbackRayTaskRunner(RayTaskRunner):
        """A local Ray cluster that listens on 127.0.0.1 only: nothing else on the network can reach it."""

        def __enter__(self):
            with _loopback_node():
                return super().__enter__()

    return LoopbackRayTaskRunner


def _worker_env(cfg: OrchestrationConfig) -> dict[str, str]:
    """What every Ray worker of the build runs with."""
    # Several workers share a node's cores, each pinned to `cpu_threads` torch threads (the same count in every
    # runner, so outputs match). OpenMP's idle threads spin by default and then steal the cores the other workers
    # compute on: two 2-thread F5 workers on 2 cores took 11 s where one took 3.3 s; waiting passively, 5-6 s.
    # How threads wait changes no result.
    env = {"OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
    # Ray workers do not inherit Prefect's settings: without the API URL each would start a temporary
    # server of its own (seconds per worker) and its task runs would not show in this flow run.
    if url := _api_url(local=cfg.ray_address is None):
        env["PREFECT_API_URL"] = url
    return env


def make_task_runner(cfg: OrchestrationConfig):
    """A fresh task runner for one flow run."""
    if cfg.task_runner == "ray":
        import ray  # noqa: F401 - Ray adds its terminal log handler on import: quieted next, before ray.init speaks
        from prefect_ray import RayTaskRunner

        quiet_terminal_handlers()
        # Quiet: Ray's workers keep their logs in the session folder instead of forwarding them to this terminal.
        init = {"include_dashboard": False, "log_to_driver": not is_quiet()}
        if cfg.ray_num_cpus:
            init["num_cpus"] = cfg.ray_num_cpus
        init["runtime_env"] = {"env_vars": _worker_env(cfg)}
        if cfg.ray_address is None:
            # "local": always a new cluster of our own, never one `ray start` left on this machine (ray.init()
            # with no address would join that, and refuse our num_cpus).
            init.update(address="local", _node_ip_address="127.0.0.1")
            return _loopback_runner_class()(init_kwargs=init)
        return RayTaskRunner(address=cfg.ray_address, init_kwargs=init)
    return ThreadPoolTaskRunner(max_workers=cfg.max_workers)
