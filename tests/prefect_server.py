"""A real Prefect server on 127.0.0.1 for tests (embedded SQLite under a temp PREFECT_HOME)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from flows.local_server import free_port
from tests.processes import stop, wait_until_healthy


def prefect_env(home: Path, api_url: str | None = None) -> dict:
    env = dict(os.environ, PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    env.update(PREFECT_LOGGING_LEVEL="WARNING", PREFECT_SERVER_LOGGING_LEVEL="WARNING")
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return env


@contextmanager
def prefect_server(home: Path, timeout: float = 120):
    """Start `prefect server start` on a free loopback port; yield its API URL; stop it after."""
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    prefect = Path(sys.executable).with_name("prefect")
    log = open(home / "server.log", "w")
    proc = subprocess.Popen(
        [str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=prefect_env(home),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_until_healthy(f"{api}/health", proc, timeout, home / "server.log")
        yield api
    finally:
        stop(proc, 20, group=True)
        log.close()


def run_deployment(http, flow: str, params: dict, deadline: float) -> dict:
    """Run deployment `<flow>/voxemoset` through the API as the UI's Run button does; its final state."""
    dep = http.get(f"/deployments/name/{flow}/voxemoset").json()
    # Right after serve() registers, the API can briefly refuse a run: ask again until it takes it.
    for _ in range(60):
        run = http.post(f"/deployments/{dep['id']}/create_flow_run", json={"parameters": params}).json()
        if "id" in run:
            break
        time.sleep(1)
    assert "id" in run, run
    final = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")
    while (state := http.get(f"/flow_runs/{run['id']}").json()["state"])["type"] not in final:
        assert time.monotonic() < deadline, f"{flow} did not finish"
        time.sleep(0.5)
    return {**state, "flow_run_id": run["id"]}
