"""A real Ray cluster for tests and benchmarks: a head and worker nodes started with `ray start` on 127.0.0.1.

Each node declares GPUs that Ray schedules (`--num-gpus`); their tasks run on the CPU. Each `ray start` runs in a
session of its own, so stopping the cluster signals exactly its processes (not `ray stop`, which ends every Ray
process of the machine). A node can be started in its own mount namespace with a folder hidden under an empty
tmpfs, as a node without the shared filesystem would be.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from flows.local_server import free_port

RAY = str(Path(sys.executable).with_name("ray"))


@dataclass
class Cluster:
    """A running cluster: its GCS address, its nodes' `ray start` processes, its temp folder."""

    address: str
    tmp: Path
    env: dict
    nodes: list[subprocess.Popen] = field(default_factory=list)

    def add_node(self, num_gpus: int, num_cpus: int, hide: Path | None = None) -> None:
        """Join a node; `hide`: that node sees an empty tmpfs over this folder (its own mount namespace)."""
        cmd = [RAY, "start", "--address", self.address, "--node-ip-address", "127.0.0.1",
               f"--num-gpus={num_gpus}", f"--num-cpus={num_cpus}", "--disable-usage-stats", "--block"]  # fmt: skip
        if hide is not None:
            hidden = f"mount -t tmpfs tmpfs {hide} && exec {' '.join(cmd)}"
            cmd = ["unshare", "--mount", "--propagation", "private", "sh", "-c", hidden]
        before = len(self.alive_nodes())
        self._start(cmd)
        self._wait_nodes(before + 1)

    def _start(self, cmd: list[str]) -> None:
        log = open(self.tmp / f"node-{len(self.nodes)}.log", "w")  # noqa: SIM115 - kept open for the node's life
        self.nodes.append(subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                           start_new_session=True))  # fmt: skip

    def alive_nodes(self) -> list[dict]:
        """The nodes GCS knows alive, asked from a fresh driver process (so this process never joins)."""
        code = "import ray, json; ray.init(address=%r, logging_level='ERROR'); print(json.dumps(ray.nodes()))"
        proc = subprocess.run([sys.executable, "-c", code % self.address], env=self.env, capture_output=True,
                              text=True, timeout=120)  # fmt: skip
        if proc.returncode:
            return []
        import json

        return [n for n in json.loads(proc.stdout.strip().splitlines()[-1]) if n["Alive"]]

    def state(self) -> dict:
        """What runs on the cluster, asked from GCS by a fresh driver: actors alive, jobs not finished (the
        asking driver's own job left out), and GPUs in use."""
        code = """
import json, ray
from ray._private import state
ray.init(address=%r, logging_level="ERROR")
me = ray.get_runtime_context().get_job_id()
actors = [a for a in state.actors().values() if a["State"] != "DEAD"]
jobs = [j["JobID"] for j in state.jobs() if not j["IsDead"] and j["JobID"] != me]
total, free = ray.cluster_resources(), ray.available_resources()
print(json.dumps({"actors": len(actors), "jobs": jobs, "gpus_in_use": total.get("GPU", 0) - free.get("GPU", 0)}))
"""
        proc = subprocess.run([sys.executable, "-c", code % self.address], env=self.env, capture_output=True,
                              text=True, timeout=120)  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]
        import json

        return json.loads(proc.stdout.strip().splitlines()[-1])

    def _wait_nodes(self, n: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while len(self.alive_nodes()) < n:
            dead = [p for p in self.nodes if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                logs = "\n".join(p.read_text()[-2000:] for p in sorted(self.tmp.glob("node-*.log")))
                raise RuntimeError(f"Ray nodes did not come up:\n{logs}")
            time.sleep(1)

    def stop(self) -> None:
        for proc in reversed(self.nodes):
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    proc.wait(15)
                    break
                except subprocess.TimeoutExpired:
                    continue
        # The daemons of a node share its session: anything left of it (raylet, workers) goes too.
        for proc in self.nodes:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@contextmanager
def ray_cluster(num_gpus: int = 1, num_cpus: int = 2, env: dict | None = None) -> Iterator[Cluster]:
    """A head node on a free port (declaring `num_gpus` GPUs); add more with `cluster.add_node`."""
    port = free_port()
    # Ray's socket paths must stay under 107 bytes: a short temp folder, not pytest's.
    with tempfile.TemporaryDirectory(prefix="ray", dir="/tmp") as tmp:
        # Token authentication off, said explicitly to nodes and drivers alike: Ray 2.60 turns it on for a `ray
        # start` that finds ~/.ray/auth_token (any local ray.init writes one) while a driver without RAY_AUTH_MODE
        # does not send it, so which of them runs first would decide whether the driver can connect.
        run_env = dict(env or os.environ, RAY_TMPDIR=tmp, RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="disabled")
        cluster = Cluster(f"127.0.0.1:{port}", Path(tmp), run_env)
        head = [RAY, "start", "--head", "--node-ip-address", "127.0.0.1", f"--port={port}", f"--num-gpus={num_gpus}",
                f"--num-cpus={num_cpus}", "--include-dashboard=false", "--disable-usage-stats", "--block"]  # fmt: skip
        try:
            cluster._start(head)
            cluster._wait_nodes(1)
            yield cluster
        finally:
            cluster.stop()
