"""Shared fixtures."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import pytest
import torch

from jointnas.training.data import Dataset, load_dataset


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Trace/run tiny models on one thread: with the default threads, tracing slowed ~10x when
    the 2-core machine was shared with other processes."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session", autouse=True)
def decoded_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Decoded image folders go to a temporary cache, not the user's home (subprocesses too)."""
    old = os.environ.get("JOINTNAS_CACHE_DIR")
    os.environ["JOINTNAS_CACHE_DIR"] = str(tmp_path_factory.mktemp("decoded"))
    yield
    if old is None:
        os.environ.pop("JOINTNAS_CACHE_DIR", None)
    else:
        os.environ["JOINTNAS_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def digits() -> Dataset:
    return load_dataset("digits", seed=0)


@pytest.fixture(scope="session")
def nan_digits(digits: Dataset) -> Dataset:
    """The digits data with every training pixel NaN: any training on it must diverge."""
    x = torch.full(digits.x_train.shape, float("nan"))
    return Dataset(
        name="nan",
        x_train=x,
        y_train=digits.y_train,
        x_val=digits.x_val,
        y_val=digits.y_val,
        num_classes=10,
    )


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL server on loopback for this test session, stopped afterwards.

    Skipped where PostgreSQL is not installed, except when ``JOINTNAS_REQUIRE_POSTGRES`` is set
    (CI sets it: there the PostgreSQL tests must really run).
    """
    from jointnas.testing.postgres import PostgresUnavailable, postgres_server

    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(postgres_server())
        except PostgresUnavailable as exc:
            if os.environ.get("JOINTNAS_REQUIRE_POSTGRES"):
                pytest.fail(f"{exc}, but JOINTNAS_REQUIRE_POSTGRES is set")
            pytest.skip(str(exc))
        yield url
