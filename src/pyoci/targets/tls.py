"""TLS contexts for registry connections, with the system's CA certificates loaded ahead of need.

Loading the CAs takes 25-30 ms (OpenSSL parses the whole bundle, with the GIL released). A command
about to talk to a registry that it verifies calls :func:`prefetch` before it imports the HTTP client
(about 55 ms), so that the two overlap; the registry client then takes the context with
:func:`verified_context`. The loading thread is not a daemon: a process that ends first waits for it
(OpenSSL torn down under a thread still inside it crashes the interpreter).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ssl

_lock = threading.Lock()
_prefetched: list[ssl.SSLContext | BaseException] = []
_loader: threading.Thread | None = None


def _system_context() -> ssl.SSLContext:
    """A context that verifies servers against the system's CAs, or certifi's bundle where it has none."""
    import ssl  # loaded only by a run that talks to a registry

    ctx = ssl.create_default_context()
    paths = ssl.get_default_verify_paths()
    if not any(p and Path(p).exists() for p in (paths.cafile, paths.capath)):
        import certifi

        ctx.load_verify_locations(certifi.where())
    return ctx


def _load() -> None:
    try:
        _prefetched.append(_system_context())
    except BaseException as exc:  # noqa: BLE001 - raised again by verified_context, on the caller's thread
        _prefetched.append(exc)


def prefetch(verify: bool = True) -> None:
    """Start loading one verifying context on a background thread (once; later calls do nothing).

    Args:
        verify: whether the connection about to be made verifies servers; when False nothing loads.
    """
    global _loader
    with _lock:
        if verify and _loader is None:
            _loader = threading.Thread(target=_load, name="pyoci-tls")
            _loader.start()


def verified_context() -> ssl.SSLContext:
    """A new :class:`ssl.SSLContext` that verifies servers (hostname and chain) against the system's CAs.

    The first call after :func:`prefetch` takes the context loaded in the background; every other
    call loads a fresh one, so each caller may add its own CAs and client certificates.

    Raises:
        ssl.SSLError, OSError: the CA certificates cannot be loaded.
    """
    with _lock:
        loader = _loader
    if loader is not None:
        loader.join()
        with _lock:
            taken = _prefetched.pop() if _prefetched else None
        if isinstance(taken, BaseException):
            raise taken
        if taken is not None:
            return taken
    return _system_context()
