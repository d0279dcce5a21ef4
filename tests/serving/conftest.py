"""The scan tests' attribution world, served: a :class:`ModelServer` over its champion, the API in-process
(no Ray Serve), and the keys the tests call with."""

from __future__ import annotations

import pytest
from scan_world import World
from serve_helpers import make_client, serve_job

from causalprint.serving.config import AuthConfig
from causalprint.serving.keys import new_key
from causalprint.serving.model_server import ModelServer


@pytest.fixture(scope="session")
def serve_world(attribution_world: World) -> World:
    """The session's attribution world, served."""
    return attribution_world


@pytest.fixture(scope="session")
def model_server(serve_world: World) -> ModelServer:
    return ModelServer(serve_job(serve_world))


@pytest.fixture(scope="session")
def api_keys() -> dict[str, str]:
    return {role: new_key(role) for role in ("user", "admin")}  # type: ignore[misc]


@pytest.fixture()
def client(model_server: ModelServer):
    """The keyless API (bound to 127.0.0.1, as the default)."""
    with make_client(model_server) as c:
        yield c


@pytest.fixture()
def keyed(model_server: ModelServer, api_keys: dict):
    with make_client(model_server, api_keys, auth=AuthConfig(requests_per_minute=6000, burst=1000)) as c:
        yield c
