"""Before a build uses a Ray cluster, every node proves that it sees the output folder.

On a cluster without a shared filesystem each node would write its shards to its own disk, and the driver would find
them missing (or, worse, some of them). So the driver writes a token under `out`, a task pinned to each alive node
reads it and writes one back, and the driver reads every answer before any stage starts.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

from voxemoset.errors import UserError

PROBE_TIMEOUT_S = 120.0


def _probe(folder: str, token: str, node: str) -> str | None:
    """On one node: None if it reads the driver's token and writes its own answer, else what went wrong."""
    probe = Path(folder)
    try:
        seen = (probe / "driver").read_text()
    except OSError as e:
        return f"cannot read {probe / 'driver'} ({e.strerror or e})"
    if seen != token:
        return f"{probe / 'driver'} holds another run's probe"
    try:
        (probe / node).write_text(token)
    except OSError as e:
        return f"cannot write {probe / node} ({e.strerror or e})"
    return None


def check_shared_out(out: Path) -> None:
    """Raise one UserError naming every alive node that does not see `out` (read and write, both ways)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex
    probe = out / f".voxemoset-probe-{token[:12]}"
    probe.mkdir()
    try:
        (probe / "driver").write_text(token)
        nodes = [n for n in ray.nodes() if n["Alive"]]
        task = ray.remote(num_cpus=0, max_retries=0)(_probe)
        refs = [
            task.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote(
                str(probe), token, n["NodeID"]
            )
            for n in nodes
        ]
        answers = ray.get(refs, timeout=PROBE_TIMEOUT_S)
        blind = []
        for node, answer in zip(nodes, answers, strict=True):
            back = probe / node["NodeID"]
            if answer is None and not (back.is_file() and back.read_text() == token):
                answer = f"what it wrote to {back} did not reach the driver"
            if answer is not None:
                blind.append(f"node {node['NodeManagerAddress']} ({node['NodeID'][:12]}): {answer}")
        if blind:
            raise UserError(
                f"{len(blind)} of {len(nodes)} Ray nodes do not see the output folder {out}, so nothing was "
                f"computed: {'; '.join(blind)}. Every node must see `out` at the same path (a shared filesystem)"
            )
    finally:
        shutil.rmtree(probe, ignore_errors=True)
