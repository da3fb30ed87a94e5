"""The wheel works on its own: build it, install it in a fresh venv, demo, import, same market.

The wheel is built from a copy of the package sources (so no ``build/`` or ``*.egg-info``
lands in the checkout) with ``pip wheel --no-deps``; pip's build isolation fetches the
build backend the ``[build-system]`` table names (``setuptools>=69``, ``wheel``), because
the current environment has no ``wheel`` for ``--no-build-isolation``. The venv is created
with ``--system-site-packages`` so the dependencies come from this environment, the wheel is
installed with ``--no-deps``, and every command there runs from a scratch directory with no
``PYTHONPATH``, so nothing can import the checkout (the test asserts where ``quantdask`` was
imported from).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import numpy as np
import pytest
import zarr

import quantdask as qd

REPO = Path(__file__).resolve().parents[1]

#: A small market that crosses the end of the packaged yield (2024-02-29): real, then simulated.
MARKET = {"n_assets": 30, "start": "2023-11-01", "end": "2024-04-30", "seed": 11}

CHECK = """
import json, sys
from importlib import resources
from pathlib import Path

import quantdask as qd
from quantdask.models import read_config, shipped_models
from quantdask.models.config import CONFIG_DIR

missing = [name for name in qd.__all__ if not hasattr(qd, name)]
ns = {}
exec("from quantdask import *", ns)
yield_file = resources.files("quantdask.data") / "cn_gov_bond_10y_yield_2002_2024.csv"
store = qd.synthetic_market(sys.argv[1], **json.loads(sys.argv[2]))
print(json.dumps({
    "file": qd.__file__,
    "missing": missing,
    "star_imported": sorted(set(qd.__all__) & set(ns)),
    "models": shipped_models(),
    "config_dir": str(CONFIG_DIR),
    "configs_read": [read_config(name).name for name in shipped_models()],
    "yield_file": str(yield_file),
    "yield_head": yield_file.read_text().splitlines()[:2],
    "cgb_10y_source": qd.open_market(store)["macro"].attrs["cgb_10y_source"],
}))
"""


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 300) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _venv_python(root: Path) -> Path:
    return root / ("Scripts" if os.name == "nt" else "bin") / "python"


def _arrays(store: Path) -> dict[str, zarr.Array | zarr.Group]:
    group = zarr.open_group(store, mode="r")
    return {"": group, **dict(group.members(max_depth=None))}


@pytest.fixture
def fresh_venv(tmp_path: Path):
    """The python of a new ``--system-site-packages`` venv, removed after the test."""
    root = tmp_path / "venv"
    venv.create(root, system_site_packages=True, with_pip=True)
    yield _venv_python(root)
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
def test_wheel_installs_demos_and_builds_the_same_market(tmp_path: Path, fresh_venv: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE", "NOTICE"):
        shutil.copy2(REPO / name, src / name)
    shutil.copytree(
        REPO / "quantdask", src / "quantdask", ignore=shutil.ignore_patterns("__pycache__")
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["MPLBACKEND"] = "Agg"
    scratch = tmp_path / "scratch"
    scratch.mkdir()

    # build the wheel; it carries the package data and the licence files
    dist = tmp_path / "dist"
    _run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(src)],
        scratch,
        env,
    )
    (wheel,) = dist.glob("quantdask-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    for path in (REPO / "quantdask").rglob("*"):
        rel = path.relative_to(REPO).as_posix()
        if path.suffix in (".py", ".toml", ".csv") and "__pycache__" not in rel:
            assert rel in names, f"{rel} is not in the wheel"
    assert {"quantdask/data/NOTICE", "quantdask/data/LICENSE-hikyuu-Apache-2.0.txt"} <= names
    for licence in ("LICENSE", "NOTICE"):
        assert any(".dist-info/" in n and n.endswith(f"/{licence}") for n in names), licence

    # a fresh venv that sees this environment's dependencies but not the checkout
    py = fresh_venv
    root = py.parent.parent
    _run(
        [
            str(py),
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            "--ignore-installed",
            str(wheel),
        ],
        scratch,
        env,
    )

    out = json.loads(
        _run([str(py), "-c", CHECK, str(tmp_path / "wheel.zarr"), json.dumps(MARKET)], scratch, env)
    )
    site = root.resolve()
    assert Path(out["file"]).resolve().is_relative_to(site), out["file"]
    assert out["missing"] == []
    assert out["star_imported"] == sorted(qd.__all__)
    assert out["models"] == sorted(
        p.stem for p in (REPO / "quantdask/models/configs").glob("*.toml")
    )
    assert out["configs_read"] and Path(out["config_dir"]).resolve().is_relative_to(site)
    assert Path(out["yield_file"]).resolve().is_relative_to(site)
    assert out["yield_head"] == ["date,yield_pct,raw_value_x10000", "2002-01-04,3.2096,32096"]
    assert out["cgb_10y_source"].startswith("real (cn_gov_bond_10y_yield_2002_2024.csv")

    # the demo runs from the installed console script, with its smallest settings
    bin_dir = py.parent
    _run(
        [
            str(bin_dir / "quantdask"),
            "demo",
            "--assets",
            "60",
            "--start",
            "2019-01-01",
            "--end",
            "2019-12-31",
            "--workers",
            "0",
            "--out",
            "demo",
        ],
        scratch,
        env,
        timeout=600,
    )
    for report in ("snapshot.html", "factor_tear_sheet.html", "model_tear_sheet.html"):
        assert (scratch / "demo" / report).stat().st_size > 0
    assert (scratch / "demo" / "market.zarr").is_dir()
    assert (scratch / "demo" / "factors.zarr").is_dir()

    # the same seed builds the same market from the wheel and from the checkout
    here = qd.synthetic_market(tmp_path / "checkout.zarr", **MARKET)
    theirs, ours = _arrays(tmp_path / "wheel.zarr"), _arrays(here)
    assert sorted(theirs) == sorted(ours)
    assert len(ours) > 50
    for name, node in ours.items():
        other = theirs[name]
        assert dict(other.attrs) == dict(node.attrs), name
        if isinstance(node, zarr.Array):
            assert other.dtype == node.dtype and other.shape == node.shape, name
            np.testing.assert_array_equal(other[...], node[...], err_msg=name)
