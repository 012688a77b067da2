"""Model load times, for the build summary: each load is one line of `<out>/logs/workers.jsonl`.

Only a driver process writes that file (the threads runner and in-process stages load there; on Ray the driver
logs what its GPU workers report), so no two hosts ever append to it at once.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

WORKER_LOG = Path("logs") / "workers.jsonl"  # under <out>: where each worker ran, what it loaded, which shards
_LOCK = threading.Lock()


def log_event(out: Path, event: str, **fields: Any) -> None:
    """Append one event line (a driver-side writer only)."""
    path = Path(out) / WORKER_LOG
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"t": round(time.time(), 3), "event": event, **fields}) + "\n"
    with _LOCK, open(path, "a") as f:
        f.write(line)


def timed_load(stage: Any, config: Any, out: Path) -> Any:
    """`stage.load(config)`, its seconds logged as a `load` event."""
    start = time.perf_counter()
    model = stage.load(config)
    log_event(out, "load", stage=stage.name, load_s=round(time.perf_counter() - start, 3), pid=os.getpid())
    return model


def read_loads(out: Path, since: float) -> dict[str, list[float]]:
    """Stage -> the load seconds logged since `since` (epoch seconds): `load` events and Ray workers' first shards."""
    loads: dict[str, list[float]] = {}
    path = Path(out) / WORKER_LOG
    if not path.is_file():
        return loads
    for line in path.read_text(errors="replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue  # a line cut by a crash
        if not isinstance(event, dict) or not isinstance(event.get("t"), int | float) or event["t"] < since:
            continue
        if event.get("event") in ("load", "done") and isinstance(event.get("load_s"), int | float):
            loads.setdefault(str(event.get("stage")), []).append(float(event["load_s"]))
    return loads
