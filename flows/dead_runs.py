"""Tag CLI flow runs with host and pid; mark the RUNNING runs of CLI processes that died (SIGKILL, OOM) CRASHED."""

from __future__ import annotations

import os
import socket

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterState,
    FlowRunFilterStateType,
    FlowRunFilterTags,
    TaskRunFilter,
    TaskRunFilterState,
    TaskRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.sorting import FlowRunSort, TaskRunSort
from prefect.states import Crashed

HOST_TAG = "voxemoset-host:"
PID_TAG = "voxemoset-pid:"
_LIVE = [StateType.RUNNING, StateType.PENDING]
_LIMIT = 200  # the sync client sends None as null, which the API refuses: ask explicitly


def run_tags() -> list[str]:
    """Tags naming this process, so a later run can tell whether the run's process still lives."""
    return [f"{HOST_TAG}{socket.gethostname()}", f"{PID_TAG}{os.getpid()}"]


def _started_at(pid: int) -> float | None:
    """When process `pid` started (epoch seconds), None if it does not exist; Linux /proc, else only existence."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/stat") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith("btime "))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except FileNotFoundError:
        return None
    except (OSError, ValueError, IndexError, StopIteration):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return 0.0


def _dead(pid: int | None, run_start: float | None) -> bool:
    if pid is None:
        return False
    if pid == os.getpid():
        return True  # this process has started no run yet: an earlier process had our pid (a restarted container)
    started = _started_at(pid)
    # A pid reused by a younger process: the run's process is gone.
    return started is None or (run_start is not None and started > run_start + 1)


def _pid(tags: list[str]) -> int | None:
    return next((int(t.removeprefix(PID_TAG)) for t in tags if t.startswith(PID_TAG) and t[len(PID_TAG) :].isdigit()),
                None)  # fmt: skip


def mark_dead_runs_crashed() -> int:
    """Set RUNNING (or PENDING) flow runs of dead voxemoset processes on this host, and their task runs, CRASHED."""
    host_tag = run_tags()[0]
    live = FlowRunFilterState(type=FlowRunFilterStateType(any_=_LIVE))
    with get_client(sync_client=True) as client:
        mine = FlowRunFilter(tags=FlowRunFilterTags(all_=[host_tag]), state=live)
        runs = client.read_flow_runs(flow_run_filter=mine, sort=FlowRunSort.ID_DESC, limit=_LIMIT)
        dead = []
        for run in runs:
            pid = _pid(run.tags)
            start = run.start_time.timestamp() if run.start_time else None
            if _dead(pid, start):
                dead.append(run.id)
                message = f"its voxemoset process (pid {pid} on {socket.gethostname()}) died"
                client.set_flow_run_state(run.id, Crashed(message=message), force=True)
        if dead:
            tasks = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=dead)),
                task_run_filter=TaskRunFilter(state=TaskRunFilterState(type=TaskRunFilterStateType(any_=_LIVE))),
                sort=TaskRunSort.ID_DESC,
                limit=_LIMIT,
            )
            for t in tasks:
                client.set_task_run_state(t.id, Crashed(message="its flow run's process died"), force=True)
    return len(dead)
