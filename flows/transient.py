"""Which failures a shard task retries: an allow-list of errors that may pass on their own, nothing else."""

from __future__ import annotations

import errno

from voxemoset.store.imported import imported

# Busy or interrupted files and sockets: another process may let go. (ENOSPC, EACCES, ENOENT... stay failed.)
_TRANSIENT_ERRNOS = {errno.EAGAIN, errno.EBUSY, errno.EINTR, errno.ETIMEDOUT, errno.ECONNRESET, errno.ECONNREFUSED,
                     errno.ECONNABORTED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ENETDOWN}  # fmt: skip


def _network_types() -> tuple[type[BaseException], ...]:
    """Client libraries' connection and timeout errors, from those already imported (none is imported here)."""
    types: list[type[BaseException]] = [ConnectionError, TimeoutError]
    if httpx := imported("httpx"):
        types.append(httpx.TransportError)
    if requests := imported("requests"):
        types += [requests.exceptions.ConnectionError, requests.exceptions.Timeout]
    if urllib3 := imported("urllib3"):
        types += [urllib3.exceptions.ProtocolError, urllib3.exceptions.TimeoutError]
    if openai := imported("openai"):
        types += [openai.APIConnectionError, openai.APITimeoutError]
    return tuple(types)


def _is_cuda_oom(exc: BaseException) -> bool:
    """torch's CUDA out-of-memory (what is left after a stage's own batch halving), without importing torch."""
    torch = imported("torch")  # a shard thread may still be importing it
    return torch is not None and isinstance(exc, torch.cuda.OutOfMemoryError)


def is_transient(exc: BaseException) -> bool:
    """True for an error that may pass on a retry (network, timeout, busy file, CUDA OOM), or one caused by it."""
    from voxemoset.errors import UserError

    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, UserError):
            return False
        if isinstance(exc, _network_types()) or _is_cuda_oom(exc):
            return True
        if isinstance(exc, OSError) and exc.errno in _TRANSIENT_ERRNOS:
            return True
        exc = exc.__cause__  # an explicit `raise ... from`: a wrapper around, say, a refused connection
    return False
