"""What a CLI flow run needs around it: a Prefect API, dead runs marked CRASHED, tags naming this process, and a
terminal that shows a failure once (the CLI's `error:` line) while the UI keeps Prefect's tracebacks."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from prefect import tags

from flows.dead_runs import mark_dead_runs_crashed, run_tags
from flows.local_server import prefect_api
from voxemoset.quiet import quiet_terminal_handlers


class _NoFailureEcho(logging.Filter):
    """Drop Prefect's failure records (errors, tracebacks) from a terminal handler; the API handler still sends them."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name.startswith("prefect") and (record.levelno >= logging.ERROR or record.exc_info))


def quiet_failures() -> None:
    """Keep Prefect's failure logs off this process's terminal handlers (the CLI prints one line instead)."""
    loggers = [logging.getLogger(), *(logging.getLogger(n) for n in list(logging.root.manager.loggerDict))]
    for handler in {h for lg in loggers for h in getattr(lg, "handlers", [])}:
        terminal = isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler)
        if terminal and not any(isinstance(f, _NoFailureEcho) for f in handler.filters):
            handler.addFilter(_NoFailureEcho())


@contextmanager
def cli_flow_run(debug: bool = False) -> Iterator[str]:
    """Run flows from the CLI: the API (a temporary server if none is configured) and this process's run tags."""
    if not debug:
        quiet_failures()
    quiet_terminal_handlers()  # Prefect's console lines (its server, one per task run) go to the log file, when quiet
    with prefect_api() as url:
        mark_dead_runs_crashed()
        with tags(*run_tags()):
            yield url
