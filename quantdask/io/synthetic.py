"""A deterministic synthetic A-share market, written chunk by chunk into a market store."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import dask.array as da
import numba
import numpy as np
import pandas as pd
import xarray as xr
import zarr

from quantdask.data import CGB_10Y_FILE, data_file
from quantdask.io import schema
from quantdask.io._synth_fund import build_fundamentals
from quantdask.io._synth_kernel import (
    INDEX_BASE_LEVEL,
    K_GROWTH,
    K_MOMENTUM,
    K_REVERSAL,
    K_ROE,
    K_SIZE,
    K_VALUE,
    N_INDEX,
    N_STATE,
    PREMIUM_CLIP,
    PREMIUM_PHI_FAST,
    PREMIUM_PHI_SLOW,
    PREMIUM_SD_FAST,
    PREMIUM_SD_SLOW,
    RING,
    S_ADJ,
    S_BONUS,
    S_CLOSE,
    S_CMV,
    S_TMV,
    S_TSHARE,
    TURBULENT_ENTER,
    TURBULENT_EXIT,
    TURBULENT_VAR,
    initial_scal,
    simulate_block,
)
from quantdask.io._synth_universe import (
    SW_CODES,
    Universe,
    build_universe,
    industry_block,
    interval_mask,
)
from quantdask.io.calendar import trading_calendar
from quantdask.io.store import atomic_directory, zarr_quiet
from quantdask.kernels.limits import limit_regime

#: Index base dates (the index exists, and has weights, from the first trading day on or
#: after its base date); the last entry is the internal FTSE China A50-like index.
INDEX_BASE_DATES: tuple[str, ...] = (
    "2003-12-31",  # SSE 50
    "2004-12-31",  # CSI 300
    "2004-12-31",  # CSI 500
    "2004-12-31",  # CSI 1000
    "2013-12-31",  # CSI 2000
    "2004-12-31",  # CSI All Share
    "2010-05-31",  # ChiNext Index
    "2008-12-31",  # CSI SOE
    "2003-12-31",  # FTSE China A50 (offshore node only)
)

#: Planted lead of the offshore series on the next day's A50 spot return.
A50_BASIS_LEAD = 0.05
A50_ETF_LEAD = 0.03


def _cgb_10y() -> pd.Series:
    """The real 10-year CGB yield (%) shipped as package data, indexed by date."""
    with data_file(CGB_10Y_FILE).open("rb") as f:
        df = pd.read_csv(f, usecols=["date", "yield_pct"], parse_dates=["date"])
    s = df.set_index("date")["yield_pct"].astype(float).sort_index()
    s.index = s.index.astype("datetime64[ns]")
    return s


def synthetic_market(
    path: str | os.PathLike[str],
    *,
    n_assets: int = 800,
    start: str | pd.Timestamp = "2019-01-01",
    end: str | pd.Timestamp = "2024-12-31",
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = False,
) -> Path:
    """Build a deterministic synthetic A-share market store at ``path``.

    The store has the layout of :mod:`quantdask.io.schema` (nodes ``daily``, ``index``,
    ``fundamentals``, ``macro``, ``offshore``; every field, coordinate, unit and chunk size
    as defined there) and reproduces what research on the real market trips over.

    Parameters
    ----------
    path : str or os.PathLike
        Local directory of the zarr v3 store to create.
    n_assets : int, default 800
        Number of stocks ever listed up to ``end``, including those listed before
        ``start`` and those delisted inside the window.
    start, end : str or pandas.Timestamp
        First and last calendar date; the dates are :func:`trading_calendar` days.
    seed : int, default 0
        Random seed; the same arguments always produce the same store.
    overwrite : bool, default False
        Replace an existing store at ``path`` (otherwise ``FileExistsError``).
    progress : bool, default False
        Print one line per date block to stderr.

    Returns
    -------
    pathlib.Path
        The path of the finished store.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False, or exists and is not a zarr store.
    TypeError, ValueError
        For bad arguments (non-integer ``n_assets`` or ``seed``, fewer than 20 assets,
        ``end`` before ``start``, fewer than 40 trading days).

    Notes
    -----
    **Build.** The store is built in a temporary sibling directory and renamed into place
    when complete, so an interrupted build leaves nothing at ``path``. Daily data are
    simulated and written one ``schema.DATE_CHUNK`` block of dates (all assets) at a time
    by a numba kernel, so memory is bounded by the block size, not by the number of dates.
    The root group's attributes record the request (``synthetic``: n_assets, start, end,
    seed) and the planted effect sizes (``planted_effects``).

    **Universe.** ``n_assets`` listings are spread over time along the real cumulative
    listing curve (about 1,400 listed in 2005, 2,500 in 2012, 3,800 in 2019, 5,400 in
    2025, plus ~350 delisted), so a 2005-2025 window ends with ~92% of its assets listed
    and the rest delisted. Codes follow the boards' formats in listing order: SH main
    600/601/603/605, STAR 688 (listings from 2019-07-22), SZ main 000/001/002/003, ChiNext
    300/301 (from 2009-10-30), BSE 83/87/43 and 920 from 2024 (from 2021-11-15). About 0.35%
    of assets per year of window delist (low-quality firms, most of them ST for the last
    year and many suspended in their last weeks); their history stays in the store.

    **Price limits.** ``up_limit``/``down_limit`` = pre_close * (1 +/- limit) rounded half up
    to 0.01 (the exchanges' rule; :mod:`quantdask.kernels.limits`, shared with
    :func:`quantdask.ingest`), none before 1996-12-16:
    10% main board (5% when ST), ChiNext 10% (ST 5%) until 2020-08-21 and 20% from
    2020-08-24, STAR 20%, BSE 30%. New listings have no limit (NaN limits) for their first
    5 trading days on STAR, on ChiNext from 2020-08-24 and on the main board from
    2023-04-10 (first day only on the BSE); earlier IPOs have a day-one cap of +44%/-36%.
    Latent returns beyond a limit close at the limit and carry over to the next day, so
    IPO pops and news create limit streaks and "one-word" bars (open = high = low =
    close). Returns have fat tails (Student t), GARCH market volatility and rare zero-mean
    news jumps. Market volatility switches between a calm regime and turbulent (crash or
    bubble) episodes: entered with probability 1/500 per day, left with 1/60 (about 3
    months), GARCH long-run variance x8 (market volatility ~2.8x); idiosyncratic and
    industry volatility scale with the market's and news jumps are more frequent. About
    1-3% of stock-days close at a limit on average; in months of turbulent episodes limit
    closes are several times as frequent (tested on the demo market: the most volatile tenth
    of months has over 1.7x the limit closes of calm months).

    **Other frictions.** Suspensions of 1 day to ~1 year (~0.45 per listed year; all
    float fields NaN, ``suspended`` True, ``is_st`` and ``industry`` keep their values);
    ST episodes of 6 months to 2.5 years; Shenwan L1 ``industry`` with random
    reclassifications (~2.5% of assets a year) plus ~8% changing on 2021-12-13 (SW 2021);
    cash dividends and bonus shares going ex in June/July (``pre_close`` adjusted,
    ``adj_factor`` multiplied by last close / pre_close); float shares unlocking after 1
    and 3 years.

    **Fundamentals.** Quarterly statements for every asset from two years before
    ``start`` (and at most three years before listing): flow items cumulative year to date,
    balance-sheet items at period end, in CNY; ``employees`` semi-annual, ``rd_staff`` and
    top-5 shares (%) annual; ``capital_adequacy``/``provision_coverage`` (%) for banks
    only. Announcement dates are weekdays before the statutory deadline (Q1 Apr 30, H1 Aug
    31, Q3 Oct 31, annual Apr 30 next year), over half of them in the last two weeks
    before it, and ~60% of late annual reports appear on the same day as the next Q1.
    About 3% of reports are restated 1-12 months later (``update_flag`` = 1). Records are
    sorted by ``ann_date``; ``asset``, ``end_date``, ``ann_date`` and ``update_flag`` are
    data variables along ``record``.

    **Valuations** use the fundamentals known strictly before the date (announced on an
    earlier calendar day, latest announcement per period wins): ``total_mv`` = close *
    total_share, ``circ_mv`` = close * float_share, ``pe_ttm`` = total_mv * 1e4 / TTM
    n_income_attr_p (NaN when <= 0), ``pb`` = total_mv * 1e4 / total_hldr_eqy, ``ps_ttm``
    likewise with TTM revenue, ``dv_ttm`` = TTM div_cash / (total_mv * 1e4) * 100, with
    TTM = YTD + previous annual - YTD of the same quarter a year earlier.
    ``turnover_rate`` = vol / float_share (%), ``amount`` = vol * mean(OHLC) / 10.

    **Planted effects** (daily expected log return added per stock; signs are what
    factor tests should find in the rank IC against forward returns). Each premium varies
    over time: on day t it is mean x clip(1 + f(t) + s(t), -2, 4), with f a fast AR(1)
    (phi 0.8, stationary std 3, larger in turbulent regimes) and s a slow one (phi 0.99,
    std 0.5), independent per factor, so a premium has spells and whole years where it is
    zero or reversed (std of the premium ~2.5x its mean):

    ==========================  =========================================  ======
    factor                      mean daily drift                           IC sign
    ==========================  =========================================  ======
    20-day return (reversal)    -0.005 x trailing 20-day log return        < 0
    12-1 month momentum         +0.0003 x (250-day - 20-day log return)    > 0, weak
    size (log total_mv)         -0.00015 per cross-sectional std           < 0
    value (log pb)              -0.00015 per std (clipped at 3)            < 0 for pb
    ROE TTM (point in time)     +0.00025 per std (clipped at 3)            > 0
    TTM profit growth (YoY)     +0.0002 per std (clipped at 3)             > 0
    ==========================  =========================================  ======

    The reversal and momentum exposures are taken relative to the day's cross-sectional
    mean (size, value, ROE and growth are z-scores), so the planted effects move stocks
    against each other, never the market as a whole.

    **Market level.** Returns also load on a market factor (beta ~ 1 +/- 0.22; GARCH
    volatility ~22% a year in calm regimes) and 31 industry factors. The market factor is
    anchored to a trend: its daily mean is pulled back by 1/150 of the whole market's
    cumulative log deviation from ~11% a year (the deviation measured on the cap-weighted
    return of every traded stock, listing days excluded), so over multi-year spans the
    market returns what the real one has shown whatever the seed, instead of a random
    walk's spread of +/-10% a year. Measured (``tests/test_synthetic.py``,
    ``test_market_return_band``; 3-8 year windows, 120-800 stocks, many seeds): CSI 300 and
    CSI All Share -2% to +15% a year (typically +5% and +9%; the size premium keeps large
    caps behind), 20-37% annual volatility; the daily-rebalanced equal-weight basket
    (listing days excluded) +8% to +25% a year (typically +17%). The real market on
    2005-2022: cap-weighted broad indices of the order of 5-15% a year with 25-35%
    volatility, the equal-weight basket ~23% a year.
    The strengths are those of real A-share research: on the demo market (800 assets,
    2019-2024, seed 0) the reversal's daily rank IC against ``fwd_ret_20`` has a mean of a
    few hundredths, a std over twice that and an IR below 0.6, 1/pb and ROE (pb / pe_ttm)
    below 0.045 (bounds tested in ``tests/test_synthetic.py``); the exact figures depend on
    the seed's premium path.

    **Indices** (8 of ``schema.INDICES``): members reviewed on the first trading day
    after the second Friday of June and December by last close total_mv, excluding ST and
    stocks listed < 60 trading days; constituent counts are the real counts scaled to the
    universe, max(3, min(20, n_listed // 6), ceil(n_listed * count / 5000)) for SSE 50
    (50, SH stocks), CSI 300 (300), CSI 500 (next 500 by size), CSI 1000 (next 1000), CSI
    2000 (next 2000), ChiNext Index (100, ChiNext stocks) and CSI SOE (100, among stocks
    flagged state-owned; ~20 members in a 150-stock market), so no index of a small market
    is a handful of stocks; CSI All Share holds every listed stock from its second day. Delisted
    stocks leave on their delisting date. Weights are float market cap (circ_mv, last
    traded close for suspended members) and sum to 1 each date; NaN before the base date
    (SSE 50 2003-12-31, CSI 2000 2013-12-31, ChiNext 2010-05-31, CSI SOE 2008-12-31,
    others 2004-12-31). Levels start at 1000 on the first store date the index exists.
    Index OHLC chain constituents' returns with the previous day's weights; vol, amount,
    total_mv, float_mv, pe_ttm, pb, dv_ttm aggregate the constituents.

    **Macro.** ``cgb_10y`` (%) is the real 10-year CGB yield (2002-01-04..2024-02-29,
    hikyuu test data, Apache-2.0, shipped as package data in ``quantdask/data``) on
    overlapping dates, forward-filled over bond-market holidays; outside its dates a
    simulated mean-reverting path continues from the nearest real value (the whole path is
    simulated when the window does not overlap the series). The node's ``cgb_10y_source``
    attribute says which dates are real.

    **Offshore.** ``a50_spot`` is a FTSE China A50-like index (largest 50 SH+SZ stocks,
    scaled like the SSE 50, level 10000 at its start); ``a50_fut`` = spot * (1 + basis)
    with basis an AR(1) (phi 0.9, mean -0.2%) plus +0.05 x the next day's spot return;
    ``a50_etf`` (HKD) = spot / 1000 * (1 + divergence) / hkd_cny with the divergence an
    AR(1) (phi 0.8) plus +0.03 x the next day's spot return: both lead spot weakly
    (correlation with the next day's spot return ~0.15 for the basis, ~0.05-0.1 for the
    ETF gap). ``hkd_cny`` is a
    mean-reverting path around 0.87.

    Examples
    --------
    >>> import quantdask as qd
    >>> p = qd.synthetic_market("/tmp/m.zarr", n_assets=60, start="2020-01-01",
    ...                         end="2020-12-31", overwrite=True)  # doctest: +SKIP
    >>> qd.open_market(p)["daily"]["close"].shape  # doctest: +SKIP
    (243, 60)
    """
    path = _check_path(path)
    n = _check_int(n_assets, "n_assets")
    seed = _check_int(seed, "seed")
    if n < 20:
        raise ValueError(f"n_assets must be at least 20, got {n}")
    dates = trading_calendar(start, end)
    if len(dates) < 40:
        raise ValueError(
            f"need at least 40 trading days between {start!r} and {end!r}, got {len(dates)}"
        )
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    if path.exists() and not (path / "zarr.json").is_file():
        raise FileExistsError(
            f"{path} exists and is not a zarr store; refusing to replace it even with overwrite=True"
        )
    requested = {"n_assets": n, "start": _date_arg(start), "end": _date_arg(end), "seed": seed}
    with atomic_directory(path, purpose="building") as tmp:
        _build(tmp, n=n, dates=dates, seed=seed, progress=progress, requested=requested)
    return path


def _check_path(path: object) -> Path:
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    p = Path(path)
    if "://" in str(path):
        raise ValueError(f"synthetic_market writes local stores only, got {path!r}")
    return p


def _check_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    return int(value)


def _say(progress: bool, msg: str) -> None:
    if progress:
        print(f"synthetic_market: {msg}", file=sys.stderr, flush=True)


def _review_flags(dates: pd.DatetimeIndex) -> np.ndarray:
    """First trading day after the second Friday of June and December."""
    flags = np.zeros(len(dates), dtype=bool)
    for year in range(dates[0].year, dates[-1].year + 1):  # a few review dates per year
        for month in (6, 12):
            first = pd.Timestamp(year=year, month=month, day=1)
            second_friday = first + pd.Timedelta(days=(4 - first.day_of_week) % 7 + 7)
            pos = int(np.searchsorted(dates.values, second_friday.to_datetime64(), side="right"))
            if pos < len(dates):
                flags[pos] = True
    return flags


def _initial_state(u: Universe) -> np.ndarray:
    n = len(u.codes)
    S = np.full((N_STATE, n), np.nan)
    pre = u.list_pos < 0
    S[S_CLOSE] = np.where(pre, u.price0, np.nan)
    S[S_TSHARE] = u.total_share0
    S[S_ADJ] = u.adj0
    S[S_BONUS] = 1.0
    S[4] = 0.0  # pending dividend per share
    S[1] = 0.0  # pending latent return
    days = -u.list_pos
    ff = np.where(
        days < 242, u.float0, np.where(days < 726, u.float0 + (0.95 - u.float0) * 0.6, 0.95)
    )
    S[S_TMV] = np.where(pre, u.price0 * u.total_share0, np.nan)
    S[S_CMV] = S[S_TMV] * ff
    S[13] = 0.0
    S[14] = 0.0
    return S


def _template(u: Universe, dates: pd.DatetimeIndex) -> tuple[xr.Dataset, xr.Dataset]:
    n, T = len(u.codes), len(dates)
    asset_coords = {
        "asset": ("asset", u.codes.astype(str)),
        "name": ("asset", u.names.astype(str)),
        "exchange": ("asset", u.exchange.astype(str)),
        "board": ("asset", u.board_name.astype(str)),
        "list_date": ("asset", u.list_date),
        "delist_date": ("asset", u.delist_date),
    }
    chunks = (schema.DATE_CHUNK, schema.ASSET_CHUNK)
    data = {}
    for f, unit in schema.DAILY_FLOAT_FIELDS.items():
        data[f] = xr.Variable(
            ("date", "asset"),
            da.full((T, n), np.nan, chunks=chunks, dtype=schema.FLOAT_DTYPE),
            {"units": unit},
        )
    for f, desc in schema.DAILY_FLAG_FIELDS.items():
        data[f] = xr.Variable(
            ("date", "asset"), da.zeros((T, n), chunks=chunks, dtype=bool), {"description": desc}
        )
    data[schema.DAILY_INDUSTRY_FIELD] = xr.Variable(
        ("date", "asset"),
        da.zeros((T, n), chunks=chunks, dtype=schema.INDUSTRY_DTYPE),
        {"description": "Shenwan level-1 industry code, 0 = none"},
    )
    coords = {"date": ("date", dates.values.astype("datetime64[ns]")), **asset_coords}
    daily = xr.Dataset(data, coords=coords)

    codes = list(schema.INDICES)
    k = len(codes)
    idx = {
        f: xr.Variable(
            ("date", "index"),
            da.full((T, k), np.nan, chunks=(schema.DATE_CHUNK, k), dtype=schema.FLOAT_DTYPE),
            {"units": unit},
        )
        for f, unit in schema.INDEX_FIELDS.items()
    }
    idx[schema.INDEX_WEIGHT_FIELD] = xr.Variable(
        ("date", "index", "asset"),
        da.full(
            (T, k, n),
            np.nan,
            chunks=(schema.DATE_CHUNK, 1, schema.ASSET_CHUNK),
            dtype=schema.FLOAT_DTYPE,
        ),
        {
            "units": "fraction of the index; sums to 1 over constituents; NaN before the index exists"
        },
    )
    index = xr.Dataset(
        idx,
        coords={
            "date": ("date", dates.values.astype("datetime64[ns]")),
            "index": ("index", np.array(codes, dtype=str)),
            "index_name": ("index", np.array(list(schema.INDICES.values()), dtype=str)),
            **asset_coords,
        },
    )
    return daily, index


def _date_arg(value: object) -> str:
    return value if isinstance(value, str) else str(pd.Timestamp(value).date())


def _build(
    tmp: Path,
    *,
    n: int,
    dates: pd.DatetimeIndex,
    seed: int,
    progress: bool,
    requested: dict[str, object],
) -> None:
    t_start = time.perf_counter()
    T = len(dates)
    rng = np.random.default_rng(seed)
    u = build_universe(rng, n, dates)
    fund = build_fundamentals(rng, u)
    n_blocks = -(-T // schema.DATE_CHUNK)
    block_seeds = rng.integers(1, 2**31 - 1, n_blocks)
    _say(
        progress,
        f"{n} assets x {T} dates: universe and {len(fund.records['asset'])} statements ready",
    )

    daily_t, index_t = _template(u, dates)
    with zarr_quiet():
        # Explicit stored chunks (also when the array is smaller than one chunk), as ingest.
        enc = {f: {"chunks": (schema.DATE_CHUNK, schema.ASSET_CHUNK)} for f in schema.DAILY_FIELDS}
        daily_t.to_zarr(
            tmp,
            group="daily",
            mode="w",
            compute=False,
            zarr_format=3,
            consolidated=False,
            encoding=enc,
        )
        enc = {f: {"chunks": (schema.DATE_CHUNK, len(schema.INDICES))} for f in schema.INDEX_FIELDS}
        enc[schema.INDEX_WEIGHT_FIELD] = {"chunks": (schema.DATE_CHUNK, 1, schema.ASSET_CHUNK)}
        index_t.to_zarr(
            tmp,
            group="index",
            mode="a",
            compute=False,
            zarr_format=3,
            consolidated=False,
            encoding=enc,
        )
        root = zarr.open_group(tmp, mode="r+", zarr_format=3)
        gd = root["daily"]
        gi = root["index"]

        S = _initial_state(u)
        ring = np.zeros((RING, n))
        ptr = np.zeros(2, dtype=np.int64)
        scal = initial_scal(np.random.default_rng([seed, 2]))
        member = np.zeros((N_INDEX, n), dtype=bool)
        weight = np.zeros((N_INDEX, n))
        idx_level = INDEX_BASE_LEVEL.copy()
        idx_valid = np.zeros(N_INDEX, dtype=bool)
        idx_base = np.searchsorted(
            dates.values, np.array(INDEX_BASE_DATES, dtype="datetime64[ns]"), side="left"
        ).astype(np.int64)
        review = _review_flags(dates)
        regime = limit_regime(dates.values)
        issue = np.where(u.list_pos >= 0, u.price0 / np.exp(u.pop_log), u.price0)
        a50_close = np.full(T, np.nan)
        float_fields = list(schema.DAILY_FLOAT_FIELDS)
        index_fields = list(schema.INDEX_FIELDS)
        k_out = len(schema.INDICES)

        for b in range(n_blocks):
            t0 = b * schema.DATE_CHUNK
            t1 = min(T, t0 + schema.DATE_CHUNK)
            tb = t1 - t0
            tpos = np.arange(t0, t1)[:, None]
            listed = (tpos >= u.list_pos[None, :]) & (tpos < u.delist_pos[None, :])
            susp = interval_mask(u.susp, n, t0, t1) & listed
            st = interval_mask(u.st, n, t0, t1) & listed
            ind = industry_block(u, t0, t1)
            out = np.full((len(float_fields), tb, n), np.nan)
            out_idx = np.full((len(index_fields), tb, N_INDEX), np.nan)
            out_w = np.full((tb, k_out, n), np.nan)
            simulate_block(
                int(block_seeds[b]),
                t0,
                tb,
                u.board,
                u.exchange_code,
                u.soe,
                u.list_pos,
                u.delist_pos,
                u.nolimit_days,
                u.old_ipo,
                u.beta,
                u.sigma,
                u.turn_base,
                u.float0,
                issue,
                u.pop_log,
                susp,
                st,
                ind,
                regime[t0:t1],
                review[t0:t1],
                idx_base,
                fund.f_day,
                fund.f_asset,
                fund.f_vals,
                fund.c_day,
                fund.c_asset,
                fund.c_cash,
                fund.c_bonus,
                S,
                ring,
                ptr,
                scal,
                member,
                weight,
                idx_level,
                idx_valid,
                out,
                out_idx,
                out_w,
            )
            for j, f in enumerate(float_fields):
                gd[f][t0:t1, :] = out[j]
            gd["suspended"][t0:t1, :] = susp
            gd["is_st"][t0:t1, :] = st
            gd[schema.DAILY_INDUSTRY_FIELD][t0:t1, :] = np.where(listed, SW_CODES[ind], 0).astype(
                schema.INDUSTRY_DTYPE
            )
            for j, f in enumerate(index_fields):
                gi[f][t0:t1, :] = out_idx[j, :, :k_out]
            gi[schema.INDEX_WEIGHT_FIELD][t0:t1] = out_w
            a50_close[t0:t1] = out_idx[3, :, N_INDEX - 1]
            del out, out_idx, out_w
            _say(
                progress,
                f"block {b + 1}/{n_blocks} {dates[t0].date()}..{dates[t1 - 1].date()} "
                f"written ({time.perf_counter() - t_start:.1f}s)",
            )

        fund_ds = _fundamentals_dataset(fund.records)
        fund_ds.to_zarr(
            tmp,
            group="fundamentals",
            mode="a",
            zarr_format=3,
            consolidated=False,
            encoding={v: {"chunks": (schema.RECORD_CHUNK,)} for v in fund_ds.data_vars},
        )
        macro_rng = np.random.default_rng([seed, 1])
        macro, source = _macro(dates, macro_rng)
        macro.attrs["cgb_10y_source"] = source
        macro.to_zarr(tmp, group="macro", mode="a", zarr_format=3, consolidated=False)
        _offshore(dates, a50_close, macro_rng).to_zarr(
            tmp, group="offshore", mode="a", zarr_format=3, consolidated=False
        )
        root.attrs.update(
            {
                "quantdask_store": "market",
                "generator": "quantdask.synthetic_market",
                # the arguments as requested (the CLI reuses a store built with the same)
                "synthetic": requested,
                "seed": seed,
                "n_assets": n,
                "start": str(dates[0].date()),
                "end": str(dates[-1].date()),
                "planted_effects": {
                    "reversal_20d": K_REVERSAL,
                    "momentum_12_1": K_MOMENTUM,
                    "size_log_total_mv": K_SIZE,
                    "value_log_pb": K_VALUE,
                    "roe_ttm": K_ROE,
                    "profit_growth_ttm": K_GROWTH,
                    "a50_basis_lead": A50_BASIS_LEAD,
                    "a50_etf_lead": A50_ETF_LEAD,
                    # daily premium = mean x clip(1 + fast + slow, 1 +/- clip)
                    "premium_ar1_fast": {"phi": PREMIUM_PHI_FAST, "sd": PREMIUM_SD_FAST},
                    "premium_ar1_slow": {"phi": PREMIUM_PHI_SLOW, "sd": PREMIUM_SD_SLOW},
                    "premium_clip": PREMIUM_CLIP,
                    "turbulent_regime": {
                        "enter_per_day": TURBULENT_ENTER,
                        "exit_per_day": TURBULENT_EXIT,
                        "variance_multiple": TURBULENT_VAR,
                    },
                },
            }
        )
        zarr.consolidate_metadata(tmp)
    _say(progress, f"done in {time.perf_counter() - t_start:.1f}s")


def _fundamentals_dataset(records: dict[str, np.ndarray]) -> xr.Dataset:
    data = {}
    for k, v in records.items():
        if k == "asset":
            v = v.astype(str)
        data[k] = ("record", v)
    ds = xr.Dataset(data)
    ds["ann_date"].attrs["description"] = "announcement date (calendar date)"
    ds["end_date"].attrs["description"] = "report period end"
    ds["update_flag"].attrs["description"] = "0 first announcement, 1 restatement"
    for k in schema.STATEMENT_ITEMS:
        ds[k].attrs["units"] = (
            "CNY, cumulative year to date" if k in schema.FLOW_ITEMS else _stock_unit(k)
        )
    return ds


def _stock_unit(k: str) -> str:
    if k in ("employees", "rd_staff"):
        return "persons"
    if k in (
        "top5_customer_share",
        "top5_supplier_share",
        "capital_adequacy",
        "provision_coverage",
    ):
        return "%"
    return "CNY, at period end"


@numba.njit(cache=True)
def _ar1(innov: np.ndarray, phi: float) -> np.ndarray:  # pragma: no cover - numba
    out = np.empty_like(innov)
    x = 0.0
    for t in range(innov.shape[0]):
        x = phi * x + innov[t]
        out[t] = x
    return out


def _ou(
    n: int, x0: float, mu: float, kappa: float, sd: float, rng: np.random.Generator
) -> np.ndarray:
    """Mean-reverting path of n steps starting next to x0 (x_{t} = x_{t-1} + k(mu-x) + e)."""
    if n == 0:
        return np.zeros(0)
    # x_t - mu = (1-kappa)(x_{t-1} - mu) + e_t, with x_{-1} = x0
    phi = 1.0 - kappa
    e = rng.normal(0.0, sd, n)
    e[0] += phi * (x0 - mu)
    return mu + _ar1(e, phi)


def _macro(dates: pd.DatetimeIndex, rng: np.random.Generator) -> tuple[xr.Dataset, str]:
    T = len(dates)
    y = np.full(T, np.nan)
    s = _cgb_10y()
    real_lo, real_hi = s.index[0], s.index[-1]
    inside = (dates >= real_lo) & (dates <= real_hi)
    if not inside.any():
        y = _ou(T, 3.0, 3.0, 0.003, 0.025, rng)
        source = (
            f"simulated mean-reverting path (the real series {CGB_10Y_FILE}, "
            f"{real_lo.date()}..{real_hi.date()}, does not overlap)"
        )
    else:
        y[inside] = s.reindex(dates[inside], method="ffill").to_numpy()
        ok = np.flatnonzero(np.isfinite(y))
        a, b = ok[0], ok[-1]
        if b + 1 < T:
            y[b + 1 :] = _ou(T - b - 1, y[b], 2.2, 0.003, 0.025, rng)
        if a > 0:
            y[:a] = _ou(a, y[a], 3.5, 0.003, 0.025, rng)[::-1]
        y = np.maximum(y, 0.5)
        source = (
            f"real ({CGB_10Y_FILE}, {real_lo.date()}..{real_hi.date()}) on "
            f"{dates[a].date()}..{dates[b].date()}; simulated mean-reverting path elsewhere"
        )
    ds = xr.Dataset(
        {"cgb_10y": ("date", y, {"units": schema.MACRO_FIELDS["cgb_10y"]})},
        coords={"date": dates.values.astype("datetime64[ns]")},
    )
    return ds, source


def _offshore(dates: pd.DatetimeIndex, a50: np.ndarray, rng: np.random.Generator) -> xr.Dataset:
    T = len(dates)
    spot = a50 * 2.0  # internal level 5000 at start -> A50-like 10000
    r_next = np.zeros(T)
    with np.errstate(invalid="ignore", divide="ignore"):
        r_next[:-1] = spot[1:] / spot[:-1] - 1.0
    r_next = np.nan_to_num(r_next, nan=0.0)
    basis = _ar1(rng.normal(0.0, 0.002, T) + A50_BASIS_LEAD * r_next, 0.9) - 0.002
    div = _ar1(rng.normal(0.0, 0.003, T) + A50_ETF_LEAD * r_next, 0.8)
    hkd = np.exp(_ou(T, np.log(0.87), np.log(0.87), 0.01, 0.0015, rng))
    data = {
        "a50_spot": spot,
        "a50_fut": spot * (1.0 + basis),
        "a50_etf": spot / 1000.0 * (1.0 + div) / hkd,
        "hkd_cny": hkd,
    }
    return xr.Dataset(
        {k: ("date", v, {"units": schema.OFFSHORE_FIELDS[k]}) for k, v in data.items()},
        coords={"date": dates.values.astype("datetime64[ns]")},
    )


__all__ = ["synthetic_market"]
