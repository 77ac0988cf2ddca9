"""Fixtures of the docker-marked deployment tests: the engine, and the release images built once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.deploy.docker_stack import Images, bake_images, docker, engine_unavailable, name_prefix


@pytest.fixture(scope="session")
def docker_engine() -> None:
    """Skip (with the reason, one line) when no Docker engine answers."""
    reason = engine_unavailable()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def images(docker_engine, tmp_path_factory) -> Iterator[Images]:
    """Every release image, built once per session with the README's `docker buildx bake`; removed
    afterwards (BuildKit keeps their layers cached for the next session)."""
    built = bake_images(f"{name_prefix()}/", tmp_path_factory.mktemp("bake") / "bake.log")
    yield built
    docker("image", "rm", *built.by_target.values(), check=False)
