"""Quiet by default: on the terminal, voxemoset's own lines and progress; what libraries say (their progress bars,
deprecation warnings, funasr's banner, matplotlib's font cache, Prefect's per-task lines, Ray's worker logs) goes to
`<out>/logs/voxemoset.log`, whose path a command prints once. `--verbose` leaves every library as it is.

Errors keep their rule: the CLI's one `error:` line is printed by the CLI itself, never by a logger.
"""

from __future__ import annotations

import collections
import logging
import os
import sys
from pathlib import Path

LOG_FILE = Path("logs") / "voxemoset.log"
# Progress bars are turned off at their source (env, read when each library loads). Prefect's console handler
# becomes `Forward` through Prefect's own logging-config override (PREFECT_LOGGING_<path>), set before Prefect loads.
QUIET_ENV = {
    "TQDM_DISABLE": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "PREFECT_LOGGING_HANDLERS_CONSOLE_CLASS": "voxemoset.quiet.Forward",
}
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
BUFFERED = 20_000  # records kept until the log file is known (the oldest go first)

_state: dict = {"quiet": False, "file": None}


class _Buffer(logging.Handler):
    """Records waiting for the command's output folder, bounded."""

    def __init__(self) -> None:
        super().__init__()
        self.records: collections.deque = collections.deque(maxlen=BUFFERED)

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


_buffer = _Buffer()


def _target() -> logging.Handler:
    return _state["file"] or _buffer


def is_quiet() -> bool:
    return _state["quiet"]


class Forward(logging.Handler):
    """Stands in for Prefect's console handler (its config's other keys, stream and styles, are accepted and unused):
    records go to the log file of a quiet command, else to stderr as Prefect's would (a Ray worker, a deployment)."""

    def __init__(self, stream=None, styles=None, **_: object) -> None:
        super().__init__()
        self._stderr = logging.StreamHandler(stream or sys.stderr)

    def setFormatter(self, fmt: logging.Formatter | None) -> None:  # noqa: N802 - logging's name
        super().setFormatter(fmt)
        self._stderr.setFormatter(fmt)

    def emit(self, record: logging.LogRecord) -> None:
        (_target() if _state["quiet"] else self._stderr).handle(record)


class _OwnLinesOnly(logging.Filter):
    """A terminal handler's filter: voxemoset's own warnings pass; libraries' records do not."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name == "voxemoset" or record.name.startswith("voxemoset.")


class _ToLogFile(logging.Handler):
    """The root logger's route to the log file (or the buffer, until there is one)."""

    def emit(self, record: logging.LogRecord) -> None:
        _target().handle(record)


def setup(quiet: bool) -> None:
    """Called once by the CLI before any library loads."""
    if not quiet:
        return
    _state["quiet"] = True
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    logging.captureWarnings(True)  # warnings become `py.warnings` records: to the file, not the terminal
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    root.addHandler(_ToLogFile())
    own = logging.StreamHandler(sys.stderr)
    own.setLevel(logging.WARNING)
    own.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    own.addFilter(_OwnLinesOnly())
    root.addHandler(own)


def quiet_terminal_handlers() -> None:
    """Keep library records off every terminal handler a library has added by now (Ray's, on import)."""
    if not _state["quiet"]:
        return
    loggers = [logging.getLogger(), *(logging.getLogger(n) for n in list(logging.root.manager.loggerDict))]
    for lg in loggers:
        for handler in list(getattr(lg, "handlers", [])):
            terminal = isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler)
            if terminal and not any(isinstance(f, _OwnLinesOnly) for f in handler.filters):
                handler.addFilter(_OwnLinesOnly())
        if isinstance(lg, logging.Logger) and lg.name and not lg.propagate and lg.handlers:
            if not any(isinstance(h, _ToLogFile | Forward) for h in lg.handlers):
                lg.addHandler(_ToLogFile())  # a logger that does not propagate still reaches the file


def log_to(out: Path) -> Path | None:
    """Send library records (those buffered so far first) to `<out>/logs/voxemoset.log`; its path, or None when
    not quiet."""
    if not _state["quiet"]:
        return None
    path = Path(out) / LOG_FILE
    if _state["file"] is None:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path, encoding="utf-8")
        handler.setFormatter(logging.Formatter(FORMAT))
        for record in _buffer.records:
            handler.handle(record)
        _buffer.records.clear()
        _state["file"] = handler
    return path


def announce_log(out: Path) -> None:
    """Library output of this command goes to a log file under its output folder: say where, once (on stdout:
    stderr is kept for the one `error:` line)."""
    if path := log_to(out):
        print(f"log: {path}", flush=True)


def quiet_print(module) -> None:
    """A library module that `print`s its chatter (funasr's version banner) logs it instead, when quiet."""
    if _state["quiet"]:
        log = logging.getLogger(module.__name__)
        module.print = lambda *args, **kwargs: log.info(" ".join(str(a) for a in args))
