"""Errors a user can fix: the CLI prints them as one line and exits non-zero."""

from __future__ import annotations

import errno


def _rebuild(cls: type, args: tuple) -> BaseException:
    exc = cls.__new__(cls)
    exc.args = args
    return exc


class UserError(Exception):
    """A mistake in input, config or environment that the user can fix (no traceback shown)."""

    def __reduce__(self):
        """Pickle without calling `__init__`: subclasses take other arguments, and a shard task's error crosses
        processes (Ray) on its way to the CLI, which must still see a UserError."""
        return (_rebuild, (type(self), self.args), self.__dict__)


class MissingWeightsError(UserError):
    """A model checkpoint is not on disk; the message names the download command."""

    def __init__(self, model: str, where: str, command: str):
        super().__init__(f"{model}: no weights at {where}. Download them with: {command}")
        self.model, self.where, self.command = model, where, command


_ERRNO_LINES = {
    errno.EACCES: "permission denied: {}",
    errno.EPERM: "operation not permitted: {}",
    errno.ENOSPC: "disk full writing {}",
    errno.EDQUOT: "disk quota exceeded writing {}",
    errno.EROFS: "read-only file system: {}",
    errno.ENOENT: "no such file or directory: {}",
}


def _os_line(e: OSError) -> str | None:
    if e.errno in _ERRNO_LINES:
        return _ERRNO_LINES[e.errno].format(e.filename or e.strerror or e)
    if "No space left on device" in str(e):  # pyarrow and others raise a plain OSError without errno
        return f"disk full: {e}"
    return None


def describe(exc: BaseException) -> str:
    """One line saying what went wrong, for the CLI's `error:` line; an unexpected error names its type."""
    if isinstance(exc, UserError):
        line = str(exc)
    elif isinstance(exc, OSError) and (known := _os_line(exc)):
        line = known
    elif isinstance(exc, ConnectionError) or type(exc).__name__ in ("ConnectError", "ConnectTimeout"):
        line = f"cannot connect to a server ({exc}); is it running? (for Prefect: PREFECT_API_URL)"
    elif isinstance(exc, UnicodeDecodeError):
        line = f"input is not UTF-8 text ({exc.reason} at byte {exc.start})"
    elif isinstance(exc, MemoryError):
        line = "out of memory: lower the batch sizes or shard_size in the config"
    elif type(exc).__name__ == "OutOfMemoryError" and type(exc).__module__.startswith("torch"):
        line = "out of GPU memory even at batch size 1: use a larger GPU or a smaller model"
    else:
        line = f"{type(exc).__name__}: {exc} (unexpected; rerun with --debug for the traceback)"
    return " ".join(line.split())  # one line, whatever the message held


class CorruptWeightsError(UserError):
    """A model checkpoint is on disk but unreadable (truncated, or not a checkpoint); names the download command."""

    def __init__(self, model: str, where: str, command: str, reason: str = ""):
        why = f" ({reason})" if reason else ""
        super().__init__(f"{model}: the weights at {where} are corrupt{why}. Download them again with: {command}")
        self.model, self.where, self.command = model, where, command
