"""Shared pytest configuration.

Local DynamoDB-compatible servers
---------------------------------
``server`` (session scope) is parametrised over ``moto`` and ``dynalite``: every test
that uses it -- directly or through another fixture -- runs once against each.  Each
kind is started on first use and stopped at the end of the session, so unit tests,
which never request these fixtures, start nothing.

* dynalite is installed into the user cache on first use when npm is present; it is
  skipped when it still is not installed, unless ``ASYNCDYN_REQUIRE_DYNALITE=1``
  (set by CI), which turns the skip into a failure.
* Tests marked ``moto_only`` are skipped for the dynalite parameter.
* ``moto_server`` is the same moto instance, for tests that need moto alone.
* Servers are shared by the whole session: use unique table names (dynalite cannot
  be reset), and do not call ``reset()`` on a shared server.
* ``ASYNCDYN_TEST_ENDPOINT=http://localhost:8000`` runs every ``server`` test once, against
  that endpoint (DynamoDB Local or dynalite from ``docker compose up``) instead of the two
  embedded servers; ``moto_only`` tests and the tests of ``asyncdyn.local``'s own servers
  are skipped then. ``ASYNCDYN_TEST_ENDPOINT_KIND=dynalite`` says the endpoint is dynalite,
  so that tests of what dynalite lacks skip themselves.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest
from hypothesis import settings

# Hypothesis's 200 ms per-example deadline measures wall time: on a shared 2-core machine
# (CI runs on one) a slow example is the machine's load, not a finding. Properties still fail
# on wrong answers; a test that must be fast says so with its own bound.
settings.register_profile("asyncdyn", deadline=None)
settings.load_profile("asyncdyn")

if TYPE_CHECKING:
    from asyncdyn.local import LocalServer

REQUIRE_DYNALITE_ENV = "ASYNCDYN_REQUIRE_DYNALITE"
EXTERNAL_ENV = "ASYNCDYN_TEST_ENDPOINT"
EXTERNAL_URL = os.environ.get(EXTERNAL_ENV, "").strip()
EXTERNAL_KIND = os.environ.get(EXTERNAL_ENV + "_KIND", "").strip() or "external"
SERVER_KINDS = [EXTERNAL_KIND] if EXTERNAL_URL else ["moto", "dynalite"]


class ExternalServer:
    """A server the session did not start, at ``$ASYNCDYN_TEST_ENDPOINT``: tests see the
    ``LocalServer`` attributes they use, with no process behind them."""

    pid = 0
    supports_reset = False

    def __init__(self, endpoint_url: str, kind: str) -> None:
        self.endpoint_url = endpoint_url.rstrip("/")
        self.kind = kind

    def cpu_seconds(self) -> float:
        return 0.0

    def stop(self) -> None:
        """Not ours to stop."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip = pytest.mark.skip(reason="moto_only: dynalite lacks transactions, TTL and Streams")
    skip_external = pytest.mark.skip(reason=f"not run against {EXTERNAL_ENV}")
    for item in items:
        callspec = getattr(item, "callspec", None)
        kind = None if callspec is None else callspec.params.get("server")
        if kind is None:
            continue
        if EXTERNAL_URL and (
            item.get_closest_marker("moto_only") is not None
            or item.path.name == "test_local.py"  # tests of the embedded servers themselves
        ):
            item.add_marker(skip_external)
        elif kind == "dynalite" and item.get_closest_marker("moto_only") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def local_servers() -> Iterator[Callable[[str], LocalServer]]:
    """A function returning the session's server of a kind, starting it on first use."""
    # Imported here so that collecting unit tests never touches the server code.
    from asyncdyn import local

    servers: dict[str, LocalServer] = {}
    failures: dict[str, BaseException] = {}

    def get(kind: str) -> LocalServer:
        if kind in failures:
            raise failures[kind]
        if kind not in servers:
            if kind == "dynalite" and local.dynalite_path() is None and shutil.which("npm"):
                # A fresh machine with Node.js: fetch dynalite once into the user cache (~4 s),
                # so README's test command covers both servers with no extra step.
                try:
                    local.install_dynalite()
                except Exception as exc:  # reported below as "not installed"
                    print(f"could not install dynalite: {exc}")
            if kind == "dynalite" and local.dynalite_path() is None:
                reason = (
                    "dynalite is not installed (needs Node.js; "
                    "`python -c 'import asyncdyn.local as l; l.install_dynalite()'`)"
                )
                if os.environ.get(REQUIRE_DYNALITE_ENV) == "1":
                    pytest.fail(f"{reason} but {REQUIRE_DYNALITE_ENV}=1", pytrace=False)
                pytest.skip(reason)
            try:
                servers[kind] = local.start(kind)
            except BaseException as exc:
                failures[kind] = exc
                raise
        return servers[kind]

    yield get
    for server in servers.values():
        server.stop()


@pytest.fixture(scope="session", params=SERVER_KINDS, ids=SERVER_KINDS)
def server(
    request: pytest.FixtureRequest, local_servers: Callable[[str], LocalServer]
) -> LocalServer:
    """The session's moto or dynalite server (tests using it run against both), or the
    external endpoint when ``ASYNCDYN_TEST_ENDPOINT`` is set."""
    kind: str = request.param
    if EXTERNAL_URL:
        return ExternalServer(EXTERNAL_URL, kind)  # type: ignore[return-value]
    return local_servers(kind)


@pytest.fixture(scope="session")
def moto_server(local_servers: Callable[[str], LocalServer]) -> LocalServer:
    """The session's moto server, for tests that only run against moto."""
    return local_servers("moto")
