"""The ``quantdask`` command: the demo end to end on a tiny market, and verify."""

from __future__ import annotations

from pathlib import Path

import pytest

from quantdask.cli import build_parser, main


def test_demo_end_to_end_writes_every_report(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "demo"
    args = ["demo", "--assets", "80", "--start", "2018-01-01", "--end", "2019-12-31"]
    assert main([*args, "--workers", "0", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for name in ("market.zarr", "factors.zarr", "snapshot.html"):
        assert (out / name).exists(), name
    for name in ("factor_tear_sheet.html", "model_tear_sheet.html"):
        html = (out / name).read_text(encoding="utf-8")
        assert "data:image/png;base64," in html
    assert "CSI 300" in printed and "rank_ic" in printed and "sharpe" in printed

    # a second run with the same parameters reuses the store instead of rebuilding it
    assert main([*args, "--workers", "0", "--out", str(out)]) == 0
    assert "reusing the existing store" in capsys.readouterr().out


def test_verify_command_reports_ok(market_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["verify", str(market_path)]) == 0
    assert "ok" in capsys.readouterr().out.lower()


def test_demo_rejects_a_tiny_universe(capsys: pytest.CaptureFixture) -> None:
    assert main(["demo", "--assets", "3"]) == 2
    assert "--assets" in capsys.readouterr().err


def test_parser_requires_a_command() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args([])
