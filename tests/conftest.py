"""Shared fixtures: scale switch, the repository's real sample data, and small synthetic markets."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--full-scale",
        action="store_true",
        default=False,
        help="run tests marked slow at their full size (CI runs them reduced)",
    )


@pytest.fixture(scope="session")
def full_scale(request: pytest.FixtureRequest) -> bool:
    """True when the run asked for full-size slow suites (``pytest --full-scale``)."""
    return bool(request.config.getoption("--full-scale"))


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """The real A-share sample data carried in ``examples/data`` (Apache-2.0, see its README)."""
    path = REPO / "examples" / "data"
    assert (path / "README.md").is_file(), f"the repository's sample data is missing at {path}"
    return path


@pytest.fixture(scope="session")
def qlib_fixture_dir() -> Path:
    """The small qlib Alpha158 fixture carried in ``tests/data/qlib_alpha158``."""
    path = REPO / "tests" / "data" / "qlib_alpha158"
    assert (path / "README.md").is_file(), f"the qlib fixture subset is missing at {path}"
    return path


@pytest.fixture(scope="session")
def market_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic market (120 assets, 2014-2019), built once per test session.

    Read-only: tests that modify a store must build or copy their own.
    """
    from quantdask.io.synthetic import synthetic_market

    path = tmp_path_factory.mktemp("market") / "market.zarr"
    synthetic_market(path, n_assets=120, start="2014-01-01", end="2019-12-31", seed=7)
    return path


@pytest.fixture(scope="session")
def market(market_path: Path):
    """The session's small synthetic market, opened with ``qd.open_market``."""
    import quantdask as qd

    return qd.open_market(market_path)
