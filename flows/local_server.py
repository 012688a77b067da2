"""A temporary Prefect server for a CLI run without a configured one, that dies with the CLI even on SIGKILL."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import prefect
from prefect.events.worker import EventsWorker
from prefect.logging import get_logger
from prefect.logging.handlers import APILogWorker
from prefect.settings import (
    PREFECT_API_URL,
    PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
    get_current_settings,
    temporary_settings,
)

from voxemoset.errors import UserError

_PR_SET_PDEATHSIG = 1
logger = get_logger("voxemoset.server")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn asking Linux to SIGKILL the child when this process dies (None where prctl is missing).

    Prefect's own temporary server outlives a SIGKILLed parent (the OOM killer's way) and keeps listening.
    libc is resolved here, before fork: a forked child of a threaded process must not dlopen.
    """
    name = ctypes.util.find_library("c")
    if not sys.platform.startswith("linux") or not name:
        return None
    prctl = ctypes.CDLL(name, use_errno=True).prctl
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before prctl took hold
            os._exit(1)

    return preexec


def _start(port: int, log: Path) -> subprocess.Popen:
    """Prefect's `SubprocessASGIServer` command and settings, plus death-with-parent and a log file."""
    env = {
        **os.environ,
        "PREFECT_UI_ENABLED": "0",
        "PREFECT__SERVER_EPHEMERAL": "1",
        "PREFECT__SERVER_FINAL": "1",
        **get_current_settings().to_environment_variables(exclude_unset=True),
    }
    args = [sys.executable, "-m", "uvicorn", "--app-dir", str(prefect.__module_path__.parent), "--factory",
            "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(port),
            "--log-level", "error", "--lifespan", "on"]  # fmt: skip
    with open(log, "ab") as sink:
        # Its own session: a Ctrl-C in the terminal reaches the CLI, which still needs the API to record it.
        return subprocess.Popen(args, env=env, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, preexec_fn=_die_with_parent())  # fmt: skip


def _wait_healthy(proc: subprocess.Popen, url: str, log: Path) -> bool:
    """True once the server answers; False if it exited (a port taken meanwhile); UserError on timeout."""
    deadline = time.monotonic() + max(60.0, PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value())
    with httpx.Client(timeout=2) as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return False
            try:
                if http.get(f"{url}/health").status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.2)
    _stop(proc)
    raise UserError(f"the temporary Prefect server did not come up; its log: {log}")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def prefect_api() -> Iterator[str]:
    """Yield the Prefect API URL: the configured server's, or a temporary server's on 127.0.0.1 that stops
    on exit, and dies with this process however it ends."""
    if url := PREFECT_API_URL.value():
        yield url
        return
    home = Path(get_current_settings().home).expanduser()
    home.mkdir(parents=True, exist_ok=True)
    log = home / "temporary-server.log"
    for _ in range(3):
        port = free_port()
        url = f"http://127.0.0.1:{port}/api"
        logger.info("Starting temporary server on %s (log: %s)", url.removesuffix("/api"), log)
        proc = _start(port, log)
        if _wait_healthy(proc, url, log):
            break
    else:
        raise UserError(f"the temporary Prefect server would not start; its log: {log}")
    # Both: Prefect's settings for this process, the environment for what it spawns (Ray workers).
    os.environ["PREFECT_API_URL"] = url
    try:
        with temporary_settings(updates={PREFECT_API_URL: url}):
            try:
                yield url
            finally:
                # The run's last logs and events reach the server before it stops (not at exit, to a dead port).
                APILogWorker.drain_all(timeout=5)
                EventsWorker.drain_all(timeout=5)
    finally:
        os.environ.pop("PREFECT_API_URL", None)
        _stop(proc)
