"""Alpha158 / Alpha360 factor sets against qlib's published output and pandas references.

* qlib parity: the committed qlib data directory ``tests/data/qlib_alpha158/qlib_data`` (3
  instruments: a delisting with adjustment-factor changes, a late listing with 353 suspended
  days, a ChiNext listing with limit-up runs; README there) is ingested with
  :func:`quantdask.ingest_qlib`, and ``qd.compute(market, qd.factor_set("alpha158",
  semantics="qlib"))`` is compared with ``alpha158_qlib_3_instruments.parquet`` (pyqlib
  0.9.7's ``Alpha158`` handler, no processors) on every one of the 158 columns: at least
  99.9% of the published cells within ``1e-4`` relative (``1e-12`` absolute for qlib's exact
  zeros) and the same NaN cells; outside the published rows (before a listing, after the
  delisting) every value is NaN. The whole 40-instrument fixture
  (``../shared/fixtures/qlib_alpha158``) is the same check, as a slow test that skips when
  the folder is absent.
* Alpha360 under qlib semantics against the lags computed with numpy from the bins.
* Strict semantics: a set of Alpha158 columns against pandas ``rolling(window)`` (full
  windows) per asset, written here from the public definitions on the store's fields
  (adjusted prices ``price * adj_factor``, volume ``vol * 100 / adj_factor``).
* :func:`quantdask.to_zarr` with ``dtype="float32"``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import quantdask as qd
from quantdask.io.qlib import qlib_to_ts_code

REPO = Path(__file__).resolve().parents[1]
FULL_FIXTURE = REPO.parent / "shared" / "fixtures" / "qlib_alpha158"
RTOL = 1e-4  # the reference is float32
ATOL = 1e-12  # qlib's exact zeros (the residual of an exact fit)
MIN_MATCH = 0.999


def ingest(provider_uri: Path, path: Path) -> xr.DataTree:
    with warnings.catch_warnings():
        # the fixture's delisted instrument is inferred as delisted (IngestWarning)
        warnings.simplefilter("ignore", qd.IngestWarning)
        qd.ingest_qlib(provider_uri, path)
    return qd.open_market(path)


@pytest.fixture(scope="module")
def market3(qlib_fixture_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> xr.DataTree:
    return ingest(qlib_fixture_dir / "qlib_data", tmp_path_factory.mktemp("a158") / "m.zarr")


def match_rates(ds: xr.Dataset, reference: pd.DataFrame) -> dict[str, tuple[float, int]]:
    """Column -> (share of published cells matching, NaN-cell mismatches)."""
    dates = reference.index.get_level_values("datetime")
    codes = [qlib_to_ts_code(c)[0] for c in reference.index.get_level_values("instrument")]
    d_idx = pd.DatetimeIndex(ds["date"].values).get_indexer(dates)
    a_idx = pd.Index(ds["asset"].values).get_indexer(codes)
    assert (d_idx >= 0).all() and (a_idx >= 0).all(), "published rows missing from the market"
    published = np.zeros((ds.sizes["date"], ds.sizes["asset"]), dtype=bool)
    published[d_idx, a_idx] = True
    out = {}
    for name in reference.columns:
        values = ds[name].transpose("date", "asset").values
        # nothing outside the rows qlib published (before a listing, after a delisting)
        assert np.isnan(values[~published]).all(), f"{name}: values outside qlib's rows"
        want = reference[name].to_numpy(np.float64)
        have = values[d_idx, a_idx]
        nan_mismatch = int((np.isnan(want) != np.isnan(have)).sum())
        both = ~np.isnan(want) & ~np.isnan(have)
        close = np.abs(have[both] - want[both]) <= RTOL * np.abs(want[both]) + ATOL
        matched = close.sum() + (np.isnan(want) & np.isnan(have)).sum()
        out[name] = (float(matched / len(want)), nan_mismatch)
    return out


def check_parity(market: xr.DataTree, reference: pd.DataFrame) -> None:
    factors = qd.factor_set("alpha158", semantics="qlib")
    assert [f.variable for f in factors] == list(reference.columns)
    ds = qd.compute(market, factors).compute()
    rates = match_rates(ds, reference)
    failures = [
        f"{name}: {rate:.4%} of cells match, {nan} NaN-cell mismatches"
        for name, (rate, nan) in rates.items()
        if rate < MIN_MATCH or nan
    ]
    assert not failures, "\n".join(failures)


def test_alpha158_qlib_semantics_match_qlib(market3: xr.DataTree, qlib_fixture_dir: Path) -> None:
    reference = pd.read_parquet(qlib_fixture_dir / "alpha158_qlib_3_instruments.parquet")
    assert reference.shape == (2079, 158)
    check_parity(market3, reference)


@pytest.mark.slow
@pytest.mark.skipif(
    not (FULL_FIXTURE / "alpha158_qlib.parquet").is_file(),
    reason=f"the whole qlib Alpha158 fixture (40 instruments) is not beside the repository at "
    f"{FULL_FIXTURE}; the 3-instrument subset in tests/data/qlib_alpha158 is tested instead",
)
def test_alpha158_qlib_semantics_match_qlib_full_fixture(tmp_path: Path) -> None:
    reference = pd.read_parquet(FULL_FIXTURE / "alpha158_qlib.parquet")
    market = ingest(FULL_FIXTURE / "qlib_data", tmp_path / "m.zarr")
    check_parity(market, reference)


# --------------------------------------------------------------------------------------
# the sets themselves
# --------------------------------------------------------------------------------------


def test_factor_sets_names_and_lookbacks() -> None:
    a158 = qd.factor_set("alpha158")
    assert len(a158) == 158 and len({f.variable for f in a158}) == 158
    by_name = {f.variable: f for f in qd.factor_set("Alpha158", semantics="qlib")}
    assert by_name["KMID"].lookback == 0
    assert by_name["MA60"].lookback == 59
    assert by_name["ROC60"].lookback == 60
    assert by_name["VSUMD60"].lookback == 60  # Ref(., 1) inside a 60-day Sum
    assert {f.semantics for f in by_name.values()} == {"qlib"}
    assert {f.semantics for f in a158} == {"strict"}
    a360 = qd.factor_set("alpha360", semantics="qlib")
    names = [f.variable for f in a360]
    assert len(names) == 360
    assert names[0] == "CLOSE59" and names[59] == "CLOSE0" and names[-1] == "VOLUME0"
    assert max(f.lookback for f in a360) == 59
    # set columns are not registry names
    assert "KMID" not in set(qd.list_factors()["name"])


def test_factor_set_unknown_name_lists_sets() -> None:
    with pytest.raises(ValueError, match="alpha158, alpha360"):
        qd.factor_set("alpha101")
    with pytest.raises(ValueError, match="semantics"):
        qd.factor_set("alpha158", semantics="pandas")


def test_alpha360_qlib_semantics_against_bins(market3: xr.DataTree, qlib_fixture_dir: Path) -> None:
    root = qlib_fixture_dir / "qlib_data"
    calendar = pd.DatetimeIndex((root / "calendars" / "day.txt").read_text().split())
    wanted = ["CLOSE0", "CLOSE1", "CLOSE59", "OPEN7", "HIGH0", "LOW30", "VWAP3", "VOLUME0"]
    wanted += ["VOLUME1", "VOLUME59"]
    factors = [f for f in qd.factor_set("alpha360", semantics="qlib") if f.variable in wanted]
    ds = qd.compute(market3, factors).compute()
    for code_dir in sorted((root / "features").iterdir()):
        code = qlib_to_ts_code(code_dir.name.upper())[0]
        series = {}
        for field in ("close", "open", "high", "low", "vwap", "volume"):
            raw = np.fromfile(code_dir / f"{field}.day.bin", dtype="<f4")
            first = int(raw[0])
            series[field] = raw[1:]
        dates = calendar[first : first + len(series["close"])]
        close = series["close"]
        for name in wanted:
            field = name.rstrip("0123456789").lower()
            lag = int(name[len(field) :])
            x = series[field]
            lagged = np.full_like(x, np.nan)
            lagged[lag:] = x[: len(x) - lag]
            if field == "volume":
                want = lagged / (x + np.float32(1e-12))
            else:
                want = lagged / close
            have = ds[name].sel(asset=code).reindex(date=dates).values
            np.testing.assert_array_equal(np.isnan(have), np.isnan(want), err_msg=name)
            np.testing.assert_allclose(have, want, rtol=1e-6, err_msg=f"{code} {name}")


# --------------------------------------------------------------------------------------
# strict semantics against pandas
# --------------------------------------------------------------------------------------


def _panels(market: xr.DataTree) -> dict[str, pd.DataFrame]:
    daily = market["daily"].to_dataset(inherit=False)

    def frame(name: str) -> pd.DataFrame:
        return daily[name].transpose("date", "asset").to_pandas().astype(np.float64)

    factor = frame("adj_factor")
    out = {k: frame(k) * factor for k in ("open", "high", "low", "close")}
    out["volume"] = frame("vol") * 100.0 / factor
    return out


def _strict_reference(p: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Alpha158 columns from their public definitions, pandas rolling with full windows."""
    c, h, low, v = p["close"], p["high"], p["low"], p["volume"]

    def per_asset(df: pd.DataFrame, fn) -> pd.DataFrame:
        return df.apply(fn)

    def line(w: np.ndarray) -> tuple[float, float]:
        slope, intercept = np.polyfit(np.arange(len(w), dtype=np.float64), w, 1)
        return slope, intercept

    def rsqr(w: np.ndarray) -> float:
        return np.corrcoef(np.arange(len(w), dtype=np.float64), w)[0, 1] ** 2

    def resi(w: np.ndarray) -> float:
        slope, intercept = line(w)
        return w[-1] - (intercept + slope * (len(w) - 1))

    def imax(w: np.ndarray) -> float:  # 1-based from the oldest row, ties to the newest
        return len(w) - np.argmax(w[::-1])

    prev = c.shift(1)
    # a comparison is NaN where either side is missing
    rise = (c > prev).astype(float).where(c.notna() & prev.notna())
    dc = c - prev
    wv = (c / prev - 1).abs() * v
    hi10, lo10 = h.rolling(10).max(), low.rolling(10).min()
    return {
        "MA20": c.rolling(20).mean() / c,
        "STD20": c.rolling(20).std() / c,
        "CORR20": per_asset(c, lambda s: s.rolling(20).corr(np.log(v[s.name] + 1))),
        "RSV10": (c - lo10) / (hi10 - lo10 + 1e-12),
        "QTLU20": c.rolling(20).quantile(0.8) / c,
        "IMAX20": h.rolling(20).apply(imax, raw=True) / 20,
        "RANK20": c.rolling(20).rank(method="average", pct=True),
        "CNTP20": rise.rolling(20).mean(),
        "SUMP20": dc.clip(lower=0).rolling(20).sum() / (dc.abs().rolling(20).sum() + 1e-12),
        "BETA20": c.rolling(20).apply(lambda w: line(w)[0], raw=True) / c,
        "RSQR20": c.rolling(20).apply(rsqr, raw=True),
        "RESI20": c.rolling(20).apply(resi, raw=True) / c,
        "VSTD5": v.rolling(5).std() / (v + 1e-12),
        "WVMA5": wv.rolling(5).std() / (wv.rolling(5).mean() + 1e-12),
    }


def test_alpha158_strict_semantics_against_pandas(market3: xr.DataTree) -> None:
    reference = _strict_reference(_panels(market3))
    factors = [f for f in qd.factor_set("alpha158") if f.variable in reference]
    assert len(factors) == len(reference)
    ds = qd.compute(market3, factors).compute()
    for name, want in reference.items():
        have = ds[name].transpose("date", "asset").to_pandas()
        want = want.reindex_like(have)
        assert want.notna().sum().sum() > 500, name  # the comparison covers real windows
        np.testing.assert_array_equal(have.isna().values, want.isna().values, err_msg=name)
        np.testing.assert_allclose(
            have.values, want.values, rtol=1e-8, atol=1e-10, equal_nan=True, err_msg=name
        )


def test_strict_windows_need_every_row(market3: xr.DataTree) -> None:
    """A suspended day (NaN close) blanks every strict 5-day window containing it."""
    ds = qd.compute(market3, [f for f in qd.factor_set("alpha158") if f.variable == "MA5"])
    ma5 = ds["MA5"].transpose("date", "asset").to_pandas()
    close = _panels(market3)["close"]
    any_missing = close.isna().astype(float).rolling(5, min_periods=1).max() > 0
    assert any_missing.values.sum() > 100
    assert ma5.where(any_missing).isna().all().all()


# --------------------------------------------------------------------------------------
# to_zarr(dtype="float32")
# --------------------------------------------------------------------------------------


def test_to_zarr_float32(market3: xr.DataTree, tmp_path: Path) -> None:
    factors = [
        f
        for f in qd.factor_set("alpha158", semantics="qlib")
        if f.variable in ("KMID", "MA20", "CORR60", "IMAX5")
    ]
    ds = qd.compute(market3, factors)
    full = qd.to_zarr(ds, tmp_path / "f64.zarr")
    half = qd.to_zarr(ds, tmp_path / "f32.zarr", dtype="float32")
    with xr.open_zarr(full) as a, xr.open_zarr(half) as b:
        for name in ds.data_vars:
            assert a[name].dtype == np.float64
            assert b[name].dtype == np.float32
            assert b[name].encoding["dtype"] == np.float32
            assert b[name].attrs["formula"] == ds[name].attrs["formula"]
            expected = a[name].values.astype(np.float32)
            np.testing.assert_array_equal(b[name].values, expected)
            # within float32 rounding of the float64 values
            np.testing.assert_allclose(b[name].values, a[name].values, rtol=6e-8, atol=0)
            assert b[name].nbytes * 2 == a[name].nbytes
    with pytest.raises(ValueError, match="floating dtype"):
        qd.to_zarr(ds, tmp_path / "int.zarr", dtype="int32")
    assert not (tmp_path / "int.zarr").exists()
