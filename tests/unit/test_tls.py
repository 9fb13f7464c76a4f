"""The registry TLS context: loaded ahead of need once, a fresh one for every other caller."""

from __future__ import annotations

import ssl
import threading

import pytest

from pyoci.targets import tls


@pytest.fixture(autouse=True)
def fresh_module(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tls, "_loader", None)
    monkeypatch.setattr(tls, "_prefetched", [])


def test_the_prefetched_context_goes_to_the_first_caller_only(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[tuple[str, ssl.SSLContext]] = []
    system_context = tls._system_context

    def counted() -> ssl.SSLContext:
        made.append((threading.current_thread().name, system_context()))
        return made[-1][1]

    monkeypatch.setattr(tls, "_system_context", counted)
    tls.prefetch()
    tls.prefetch()  # once
    first, second = tls.verified_context(), tls.verified_context()
    assert made == [("pyoci-tls", first), ("MainThread", second)]
    assert first is not second
    for ctx in (first, second):
        assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname


def test_a_failure_while_prefetching_is_raised_to_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    system_context = tls._system_context

    def broken_on_the_loader() -> ssl.SSLContext:
        if threading.current_thread().name == "pyoci-tls":
            raise ssl.SSLError("bad bundle")
        return system_context()

    monkeypatch.setattr(tls, "_system_context", broken_on_the_loader)
    tls.prefetch()
    with pytest.raises(ssl.SSLError, match="bad bundle"):
        tls.verified_context()
    assert tls.verified_context().verify_mode == ssl.CERT_REQUIRED  # the next caller loads its own


def test_nothing_loads_for_an_unverified_connection_and_the_loader_is_waited_for() -> None:
    tls.prefetch(verify=False)
    assert tls._loader is None
    tls.prefetch()
    assert tls._loader is not None and not tls._loader.daemon  # a process ending first waits for it
    tls.verified_context()
