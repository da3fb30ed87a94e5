"""README.md's ``python`` blocks run as a reader runs them (issue 17).

In a scratch directory: first ``quantdask demo`` (what the README's quick start says comes
first; at reduced scale 150 stocks in one process, ``--full-scale`` the README's default
800 on its 2-process cluster), then every ```` ```python ```` block of README.md in order,
each saved to its own file and run as a script (so a cluster started without an
``if __name__ == "__main__":`` guard fails as it would for the reader). The blocks that say
a re-run resumes or that can be re-run (the sweep and the timing blocks) run twice; the
sweep's second run must compute nothing (its finished cell records are not rewritten).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def readme_blocks() -> list[str]:
    """The code of every ```python block of README.md, in order."""
    return BLOCK.findall(README.read_text(encoding="utf-8"))


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "MPLBACKEND": "Agg",
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p),
    }


def _run(cmd: list[str], cwd: Path, what: str) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{what} failed:\n{done.stdout[-3000:]}\n{done.stderr[-4000:]}"
    return done


def test_readme_has_the_blocks_this_test_expects() -> None:
    blocks = readme_blocks()
    assert len(blocks) >= 10
    assert sum("qd.sweep(" in b for b in blocks) == 1
    assert sum("qd.dtw_timing(" in b for b in blocks) == 1
    # what a reader runs first: the quick start's `quantdask demo`, then the blocks
    assert "quantdask demo" in README.read_text(encoding="utf-8").split("```python")[0]


@pytest.mark.slow
def test_readme_blocks_run_in_order_after_the_demo(tmp_path: Path, full_scale: bool) -> None:
    demo = [sys.executable, "-m", "quantdask.cli", "demo"]
    if not full_scale:
        demo += ["--assets", "150", "--workers", "0"]
    _run(demo, tmp_path, "quantdask demo")
    assert (tmp_path / "quantdask-demo" / "market.zarr").is_dir()

    for i, code in enumerate(readme_blocks()):
        script = tmp_path / f"readme_block_{i:02d}.py"
        script.write_text(code, encoding="utf-8")
        what = f"README block {i} ({code.strip().splitlines()[-1][:60]!r})"
        _run([sys.executable, script.name], tmp_path, what)
        if "qd.sweep(" in code:
            cells = sorted((tmp_path / "sweep.zarr" / "cells").glob("*/zarr.json"))
            assert len(cells) == 12
            stamps = {p: p.stat().st_mtime_ns for p in cells}
            _run([sys.executable, script.name], tmp_path, what + ", re-run")
            assert {p: p.stat().st_mtime_ns for p in cells} == stamps, "re-run recomputed cells"
        elif "qd.dtw_timing(" in code:
            _run([sys.executable, script.name], tmp_path, what + ", re-run")
