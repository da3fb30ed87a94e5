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
    # two years of history: the page says why the 5-year rows are blank (issue 17)
    page = (out / "snapshot.html").read_text(encoding="utf-8")
    for label in ("skew - 5y mean", "ex. kurt - 5y mean", "PE pct 5y"):
        assert f"<li>{label}: empty, it needs " in page, label
    for name in ("factor_tear_sheet.html", "model_tear_sheet.html"):
        html = (out / name).read_text(encoding="utf-8")
        assert "data:image/png;base64," in html
    assert "CSI 300" in printed and "rank_ic" in printed and "sharpe" in printed
    # no cluster was started, so the last line does not talk about one
    assert printed.strip().splitlines()[-1] == f"reports in {out.resolve()}/"

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


def _help(capsys: pytest.CaptureFixture, *argv: str) -> str:
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--help"])
    assert exc.value.code == 0
    return " ".join(capsys.readouterr().out.split())  # argparse re-wraps the text


def test_demo_help_describes_the_run_and_every_default(capsys: pytest.CaptureFixture) -> None:
    text = _help(capsys, "demo")
    assert "synthetic A-share market" in text and "tear sheets" in text
    assert "--workers" in text and "default 2" in text


def test_verify_help_says_what_is_checked_and_the_exit_codes(
    capsys: pytest.CaptureFixture,
) -> None:
    text = _help(capsys, "verify")
    for checked in ("dtype", "chunk", "Shanghai exchange sessions", "weights", "journal"):
        assert checked in text, checked
    assert "exit codes" in text.lower()
    assert "0 when the store passes" in text and "1 when" in text and "2 " in text


@pytest.mark.parametrize("bad", ["-1", "two"])
def test_demo_rejects_a_negative_worker_count(bad: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--workers", bad])
    assert exc.value.code == 2
    assert "--workers" in capsys.readouterr().err


def test_demo_with_a_cluster_says_its_dashboard_closed(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import quantdask as qd
    import quantdask.cli as cli

    closed = []

    class FakeClient:
        dashboard_link = "http://127.0.0.1:1/status"

        def close(self) -> None:
            closed.append(True)

    monkeypatch.setattr(cli, "_research", lambda market, out: print("research ran"))
    monkeypatch.setattr(qd, "connect", lambda **kwargs: FakeClient())
    out = tmp_path / "demo"
    args = ["demo", "--assets", "20", "--start", "2023-01-01", "--end", "2023-03-31"]
    assert main([*args, "--workers", "1", "--out", str(out)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert closed == [True]
    assert last == f"reports in {out.resolve()}/ (the cluster and its dashboard are closed)"
