"""Every script under examples/ runs twice in a row from a scratch directory (issue 17).

Each run gets its own empty temporary directory (``TMPDIR``, so ``tempfile.gettempdir()``
in the script is that directory), which must still be empty after both runs: nothing is
left behind in the temporary directory. The second run must succeed on what the first left
in the working directory, and the "re-run resumes" claims are checked from the output:
``parameter_sweep.py`` reads every cell back, ``factor_snapshot.py`` reuses its cached
market only when every argument that shapes it is the same. At the default scale the
scripts run at small sizes (their own ``--assets``/``--start``/``--end``); ``--full-scale``
runs them at their defaults.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((REPO / "examples").glob("*.py"))

#: Small-size arguments of the scripts that take them (CI budget).
SMALL = {
    "backtest_topn": ["--assets", "80", "--start", "2017-01-01", "--end", "2019-06-30"],
    "factor_tear_sheet": ["--assets", "80", "--start", "2017-01-01", "--end", "2019-06-30"],
    "factor_snapshot": ["--assets", "60", "--start", "2016-01-01", "--end", "2019-12-31"],
    **{
        f"model_{m}": ["--assets", "80", "--start", "2016-01-01", "--end", "2018-12-31"]
        for m in ("soe", "tech", "consumer", "lithium_chain")
    },
}


def _run(script: Path, args: list[str], cwd: Path, tmp: Path) -> str:
    env = {
        **os.environ,
        "TMPDIR": str(tmp),
        "MPLBACKEND": "Agg",
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p),
    }
    done = subprocess.run(
        [sys.executable, str(script), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, (
        f"{script.name} {args} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return done.stdout


@pytest.mark.slow
@pytest.mark.parametrize("script", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs_twice_and_leaves_no_temporary_files(
    script: Path, tmp_path: Path, full_scale: bool
) -> None:
    work, tmp = tmp_path / "work", tmp_path / "tmp"
    work.mkdir()
    tmp.mkdir()
    outer_before = set(os.listdir(tempfile.gettempdir()))
    args = [] if full_scale else SMALL.get(script.stem, [])
    first = _run(script, args, work, tmp)
    second = _run(script, args, work, tmp)
    left = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*"))
    assert left == [], f"{script.name} left in the temporary directory: {left[:10]}"
    # nothing of ours appeared in this process's temporary directory either (other
    # programs may write there meanwhile, so only names the examples use are checked)
    new = set(os.listdir(tempfile.gettempdir())) - outer_before
    assert not [n for n in new if n.startswith(("quantdask", "qd_", "qd-"))], new

    if script.stem == "parameter_sweep":
        assert "cells: 12 computed, 0 read back" in first, first[-500:]
        assert "cells: 0 computed, 12 read back" in second, second[-500:]
    if script.stem == "factor_snapshot":
        assert "reusing" not in first and "reusing" in second
        # another --end is another market: built, not the cached one reused
        other = list(args)
        if "--end" in other:
            other[other.index("--end") + 1] = "2018-12-31"
        else:
            other += ["--end", "2018-12-31"]
        third = _run(script, other, work, tmp)
        assert "reusing" not in third
        assert "Broad-index snapshot, 2018-12-28" in third
        assert "Broad-index snapshot, 2019-12-31" in second
        assert list(tmp.iterdir()) == []
