"""Synthetic market, part 1: the universe (codes, boards, listings, delistings, episodes).

Everything here is per asset (vectorised over assets) or per interval; nothing loops over
stocks or dates in Python except over a handful of boards and code prefixes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from quantdask.io import schema
from quantdask.io.calendar import trading_calendar
from quantdask.kernels import limits
from quantdask.kernels.limits import BOARD_NAMES, BSE, CHINEXT, MAIN, STAR, nolimit_days

# Board integer codes used by the kernels: MAIN, STAR, CHINEXT, BSE and BOARD_NAMES come from
# the shared limit rules (quantdask.kernels.limits), as do the reform dates below.

STAR_START = pd.Timestamp("2019-07-22")
CHINEXT_START = pd.Timestamp("2009-10-30")
CHINEXT_REFORM = pd.Timestamp(limits.CHINEXT_REFORM)
BSE_START = pd.Timestamp("2021-11-15")
MAIN_REGISTRATION = pd.Timestamp(limits.MAIN_REGISTRATION)
SW2021_RECLASS = pd.Timestamp("2021-12-13")
FIRST_LISTING = pd.Timestamp("1990-12-19")

#: Cumulative number of stocks ever listed (year fraction -> count), from ASHARE.md's
#: listed counts (1,400 in 2005, 2,500 in 2012, 3,800 in 2019, 5,400 in 2025) plus the
#: ~350 delisted along the way; extrapolated at 160 a year after 2025.
_EVER_LISTED = np.array(
    [
        [1990.96, 0.0],
        [1993.0, 180.0],
        [1997.0, 750.0],
        [2001.0, 1160.0],
        [2005.0, 1440.0],
        [2008.0, 1680.0],
        [2010.0, 2190.0],
        [2012.0, 2610.0],
        [2016.0, 3170.0],
        [2019.0, 3960.0],
        [2021.0, 4760.0],
        [2023.0, 5480.0],
        [2025.0, 5760.0],
        [2060.0, 5760.0 + 160.0 * 35],
    ]
)

# (board, exchange, [(prefix, first number)], capacity per prefix)
_PREFIXES: dict[int, list[str]] = {
    MAIN * 10 + 0: ["600", "601", "603", "605"],  # SH main
    MAIN * 10 + 1: ["000", "002", "001", "003"],  # SZ main
    STAR * 10: ["688", "689"],
    CHINEXT * 10: ["300", "301"],
    BSE * 10: ["83", "87", "43", "920"],
}

#: SW level-1 industry codes in schema order; kernels use their position (0..30).
SW_CODES = np.array(list(schema.SW_L1), dtype=np.int32)
_SW_TECH = {801080, 801750, 801770, 801150, 801730, 801740, 801890, 801760}
_SW_WEIGHT = np.array(
    [
        {
            801010: 1.0,
            801030: 2.6,
            801040: 0.9,
            801050: 1.5,
            801080: 3.0,
            801110: 1.0,
            801120: 1.4,
            801130: 1.2,
            801140: 1.5,
            801150: 3.0,
            801160: 1.4,
            801170: 1.3,
            801180: 1.4,
            801200: 1.2,
            801210: 0.6,
            801230: 0.3,
            801710: 0.9,
            801720: 1.4,
            801730: 2.2,
            801740: 0.9,
            801750: 2.6,
            801760: 1.5,
            801770: 0.7,
            801780: 0.8,
            801790: 1.0,
            801880: 2.0,
            801890: 3.5,
            801950: 0.5,
            801960: 0.5,
            801970: 1.0,
            801980: 0.3,
        }[int(c)]
        for c in SW_CODES
    ]
)
BANK_POS = int(np.flatnonzero(SW_CODES == 801780)[0])
TECH_MASK = np.isin(SW_CODES, list(_SW_TECH))

_SYLLABLES = np.array(
    "hua xin tian zhong guo hai jin long feng an kang da sheng tong yuan hong ming rui de"
    " bao chang jia fu xing kai yu heng dong nan bei shan he".split()
)
_SUFFIX = np.array(
    "Tech Holdings Industrial Pharma Energy Materials Electronics Group Shares Bio"
    " Machinery Foods Chemical Software Motors".split()
)


@dataclass
class Universe:
    """Per-asset attributes of a synthetic market (all arrays of length ``n``)."""

    dates: pd.DatetimeIndex  # the window's trading days
    codes: np.ndarray  # <U ts_code, sorted
    names: np.ndarray
    exchange: np.ndarray
    exchange_code: np.ndarray  # int8: 0 SH, 1 SZ, 2 BJ
    board_name: np.ndarray
    board: np.ndarray  # int8 board code
    list_date: np.ndarray  # datetime64[ns]
    delist_date: np.ndarray  # datetime64[ns], NaT if listed at end
    list_pos: np.ndarray  # int64 trading-day position in the window (negative: before start)
    delist_pos: np.ndarray  # int64 position of the delist date (T: not delisted)
    nolimit_days: np.ndarray  # int64 trading days without a price limit after listing
    old_ipo: np.ndarray  # bool: day-one cap +44% / -36% (pre-registration IPO)
    soe: np.ndarray  # bool
    industry0: np.ndarray  # int32 SW position
    chg_pos: np.ndarray  # (2, n) int64 positions of industry changes (>= T: none)
    chg_ind: np.ndarray  # (2, n) int32 new SW positions
    quality: np.ndarray  # latent quality (standard normal)
    beta: np.ndarray
    sigma: np.ndarray
    turn_base: np.ndarray
    price0: np.ndarray  # price at start (pre-listed) or fair price after the IPO pop
    pop_log: np.ndarray  # log IPO pop (0 for assets listed before start)
    total_share0: np.ndarray  # 10k shares
    float0: np.ndarray  # float fraction at listing
    pb0: np.ndarray
    adj0: np.ndarray  # adj_factor at start for assets listed before start
    susp: np.ndarray  # (k, 3) int64 intervals: asset, start pos, end pos (exclusive)
    st: np.ndarray  # (k, 3) int64 ST intervals


def _year_fraction(ts: np.ndarray) -> np.ndarray:
    idx = pd.DatetimeIndex(ts)
    return idx.year + (idx.day_of_year - 1) / 365.25


def _from_year_fraction(y: np.ndarray) -> np.ndarray:
    year = np.floor(y).astype(int)
    base = pd.to_datetime(pd.DataFrame({"year": year, "month": 1, "day": 1}))
    days = np.floor((y - year) * 365.25).astype("timedelta64[D]")
    return (base.values.astype("datetime64[D]") + days).astype("datetime64[ns]")


def _ever_listed(year: np.ndarray | float) -> np.ndarray:
    return np.interp(year, _EVER_LISTED[:, 0], _EVER_LISTED[:, 1])


def _assign_boards(
    rng: np.random.Generator, list_date: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Board and exchange (0 SH, 1 SZ, 2 BJ) drawn with date-dependent shares."""
    n = len(list_date)
    ld = list_date
    # columns: SH main, SZ main, STAR, ChiNext, BSE
    p = np.zeros((n, 5))
    p[:] = [0.5, 0.5, 0, 0, 0]
    p[ld >= np.datetime64("2004-06-01")] = [0.4, 0.6, 0, 0, 0]
    p[ld >= CHINEXT_START.to_datetime64()] = [0.36, 0.34, 0, 0.30, 0]
    p[ld >= STAR_START.to_datetime64()] = [0.2, 0.15, 0.3, 0.35, 0]
    p[ld >= BSE_START.to_datetime64()] = [0.15, 0.12, 0.25, 0.3, 0.18]
    cum = np.cumsum(p, axis=1)
    u = rng.random(n)[:, None]
    col = (u > cum).sum(axis=1)
    board = np.array([MAIN, MAIN, STAR, CHINEXT, BSE], dtype=np.int8)[col]
    exch = np.array([0, 1, 0, 1, 2], dtype=np.int8)[col]
    return board, exch


def _preferred_prefix(
    rng: np.random.Generator, board: np.ndarray, exch: np.ndarray, ld: np.ndarray
) -> np.ndarray:
    """Index into the board's prefix list that a listing on ``ld`` would get."""
    n = len(board)
    u = rng.random(n)
    pref = np.zeros(n, dtype=np.int64)
    d = ld.astype("datetime64[D]")
    sh = (board == MAIN) & (exch == 0)
    pref[sh & (d >= np.datetime64("2001-01-01")) & (u < 0.4)] = 1
    pref[sh & (d >= np.datetime64("2011-01-01"))] = np.where(
        u[sh & (d >= np.datetime64("2011-01-01"))] < 0.2, 1, 2
    )
    pref[sh & (d >= np.datetime64("2020-01-01"))] = np.where(
        u[sh & (d >= np.datetime64("2020-01-01"))] < 0.5, 3, 2
    )
    sz = (board == MAIN) & (exch == 1)
    pref[sz & (d >= np.datetime64("2004-06-01"))] = 1
    late = sz & (d >= np.datetime64("2020-06-01"))
    pref[late] = np.where(u[late] < 0.5, 2, 3)
    cy = (board == CHINEXT) & (d >= np.datetime64("2021-01-01"))
    pref[cy] = np.where(u[cy] < 0.7, 1, 0)
    bj = board == BSE
    pref[bj] = np.where(u[bj] < 0.6, 0, np.where(u[bj] < 0.85, 1, 2))
    pref[bj & (d >= np.datetime64("2024-01-01"))] = 3
    return pref


def _make_codes(
    board: np.ndarray, exch: np.ndarray, pref: np.ndarray, ld: np.ndarray
) -> np.ndarray:
    """Sequential ts_codes per prefix in listing order; overflowing prefixes spill over."""
    n = len(board)
    codes = np.empty(n, dtype="U9")
    key = board.astype(np.int64) * 10 + np.where(board == MAIN, exch, 0)
    suffix = np.array([".SH", ".SZ", ".BJ"])[exch]
    for k, prefixes in _PREFIXES.items():
        members = np.flatnonzero(key == k)
        if members.size == 0:
            continue
        members = members[np.argsort(ld[members], kind="stable")]
        want = pref[members]
        carry = np.empty(0, dtype=np.int64)  # members spilled over from full prefixes
        for p, prefix in enumerate(prefixes):  # a few prefixes per board
            width = 6 - len(prefix)
            idx = np.concatenate([carry, members[want == p]])
            idx = idx[np.argsort(ld[idx], kind="stable")]
            cap = 10**width - 2
            if p == len(prefixes) - 1 and idx.size > cap:
                raise ValueError(f"n_assets too large: prefix {prefix} would overflow")
            take, carry = idx[:cap], idx[cap:]
            if take.size == 0:
                continue
            nums = np.char.zfill(np.arange(1, take.size + 1).astype("U6"), width)
            codes[take] = np.char.add(prefix, nums)
    return np.char.add(codes, suffix)


def _intervals(
    rng: np.random.Generator,
    asset: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    lengths: np.ndarray,
) -> np.ndarray:
    """Intervals [s, s+len) with s uniform in [lo, hi) for each row; rows with hi<=lo dropped."""
    ok = hi > lo
    asset, lo, hi, lengths = asset[ok], lo[ok], hi[ok], lengths[ok]
    s = lo + np.floor(rng.random(asset.size) * (hi - lo)).astype(np.int64)
    return np.stack([asset, s, s + lengths], axis=1).astype(np.int64)


def build_universe(
    rng: np.random.Generator,
    n_assets: int,
    dates: pd.DatetimeIndex,
) -> Universe:
    """Draw the asset universe of a synthetic market over the trading days ``dates``."""
    start, end = dates[0], dates[-1]
    T = len(dates)
    n = n_assets
    y_end = float(_year_fraction(np.array([end.to_datetime64()]))[0])
    c_end = float(_ever_listed(y_end))
    # Listing times: quantiles of the cumulative-listings curve, scaled so n = total ever listed.
    # Stratified quantiles: small universes follow the curve closely too.
    u = (np.arange(n) + rng.random(n)) / n * c_end
    y_list = np.interp(u, _EVER_LISTED[:, 1], _EVER_LISTED[:, 0])
    ld_raw = _from_year_fraction(y_list)
    ld_raw = np.clip(ld_raw, FIRST_LISTING.to_datetime64(), end.to_datetime64())
    # Snap to trading days on an extended calendar that starts at the first listing.
    first = min(pd.Timestamp(ld_raw.min()), start)
    ext = trading_calendar(first, end)
    pos_ext = np.searchsorted(ext.values, ld_raw, side="left")
    pos_ext = np.minimum(pos_ext, len(ext) - 1)
    list_date = ext.values[pos_ext]
    start_ext = int(np.searchsorted(ext.values, dates.values[0]))
    list_pos = (pos_ext - start_ext).astype(np.int64)

    board, exch = _assign_boards(rng, list_date)
    pref = _preferred_prefix(rng, board, exch, list_date)
    codes = _make_codes(board, exch, pref, list_date)

    order = np.argsort(codes, kind="stable")
    codes = codes[order]
    list_date = list_date[order]
    list_pos = list_pos[order]
    board = board[order]
    exch = exch[order]

    nolimit = nolimit_days(board, list_date)
    old_ipo = nolimit == 0

    quality = rng.standard_normal(n)
    soe_p = np.select(
        [board == MAIN, board == STAR, board == CHINEXT],
        [np.where(exch == 0, 0.45, 0.3), 0.08, 0.05],
        0.03,
    )
    soe = rng.random(n) < soe_p

    # Industry: tech boards lean to tech industries.
    w = np.broadcast_to(_SW_WEIGHT, (n, len(SW_CODES))).copy()
    tech_board = (board == STAR) | (board == CHINEXT)
    w[tech_board] *= np.where(TECH_MASK, 4.0, 0.5)
    w[~tech_board & soe] *= np.where(
        np.isin(SW_CODES, [801780, 801160, 801950, 801040, 801960, 801170]), 3.0, 1.0
    )
    w /= w.sum(axis=1, keepdims=True)
    industry0 = (rng.random(n)[:, None] > np.cumsum(w, axis=1)).sum(axis=1).astype(np.int32)
    industry0 = np.minimum(industry0, len(SW_CODES) - 1)

    # Delistings: low-quality, older listings, ~0.9% of assets per year of window.
    years = T / 242.0
    eligible = list_pos < T - 300
    p_del = np.where(eligible, np.minimum(0.0035 * years * np.exp(-0.8 * quality) / 1.4, 0.5), 0.0)
    delisted = rng.random(n) < p_del
    lo = np.maximum(list_pos + 250, 120)
    hi = np.full(n, T - 1)
    delisted &= hi > lo
    delist_pos = np.full(n, T, dtype=np.int64)
    dp = lo + np.floor(rng.random(n) * np.maximum(hi - lo, 1)).astype(np.int64)
    delist_pos[delisted] = dp[delisted]
    delist_date = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
    delist_date[delisted] = dates.values[delist_pos[delisted]]
    quality[delisted] -= 1.0  # failing firms: their fundamentals deteriorate

    # Industry changes: random reclassifications plus the SW 2021 revision.
    chg_pos = np.full((2, n), np.iinfo(np.int64).max // 4, dtype=np.int64)
    chg_ind = np.zeros((2, n), dtype=np.int32)
    live_lo = np.maximum(list_pos + 20, 1)
    live_hi = np.minimum(delist_pos, T)
    p_chg = np.minimum(0.025 * years, 0.6)
    c1 = (rng.random(n) < p_chg) & (live_hi > live_lo)
    chg_pos[0, c1] = (live_lo + np.floor(rng.random(n) * np.maximum(live_hi - live_lo, 1)))[c1]
    chg_ind[0] = (industry0 + rng.integers(1, len(SW_CODES), n)) % len(SW_CODES)
    rp = int(np.searchsorted(dates.values, SW2021_RECLASS.to_datetime64()))
    if 0 < rp < T:
        c2 = (rng.random(n) < 0.08) & (list_pos < rp) & (delist_pos > rp)
        chg_pos[1, c2] = rp
        base = np.where(chg_pos[0] <= rp, chg_ind[0], industry0)
        chg_ind[1] = (base + rng.integers(1, len(SW_CODES), n)) % len(SW_CODES)
    # Keep the two changes ordered in time.
    swap = chg_pos[1] < chg_pos[0]
    chg_pos[:, swap] = chg_pos[::-1, swap]
    chg_ind[:, swap] = chg_ind[::-1, swap]

    # Market parameters.
    is601 = np.char.startswith(codes, "601")
    log_mv = rng.normal(5.55, 0.45, n) * np.log(10)  # 10k CNY; median ~3.5bn CNY
    log_mv += np.where(is601, 1.2, 0.0) + np.where(board == BSE, -0.9, 0.0) + 0.25 * quality
    price0 = np.clip(np.exp(rng.normal(np.log(12.0), 0.65, n) + 0.15 * quality), 2.0, 400.0)
    price0 = np.round(price0, 2)
    total_share0 = np.exp(log_mv) / price0
    size_z = (log_mv - log_mv.mean()) / log_mv.std()
    beta = np.clip(rng.normal(1.0, 0.22, n), 0.3, 1.8)
    sigma = np.clip(np.exp(rng.normal(np.log(0.019), 0.25, n) - 0.12 * size_z), 0.008, 0.05)
    sigma *= np.where((board == STAR) | (board == BSE), 1.3, 1.0)
    turn_base = np.clip(np.exp(rng.normal(np.log(1.6), 0.45, n) - 0.35 * size_z), 0.1, 15.0)
    pb0 = np.exp(rng.normal(np.log(2.4), 0.45, n) + 0.25 * quality)
    float0 = rng.uniform(0.2, 0.35, n)
    adj0 = np.where(
        list_pos < 0, np.exp(rng.uniform(0.0, 1.2, n) * np.minimum(-list_pos, 2500) / 2500), 1.0
    )
    pop_mu = np.where(old_ipo, 0.9, np.where(board == BSE, 0.35, 0.7))
    pop_log = np.where(list_pos >= 0, np.clip(rng.normal(pop_mu, 0.5), 0.0, 2.5), 0.0)

    # Suspensions: ~0.45 episodes per listed year; lengths 1 day .. ~1 year.
    live_years = np.maximum(live_hi - np.maximum(list_pos, 0), 0) / 242.0
    k = rng.poisson(0.45 * live_years)
    a = np.repeat(np.arange(n), k)
    cls = rng.random(a.size)
    length = np.select(
        [cls < 0.45, cls < 0.7, cls < 0.85, cls < 0.95],
        [
            np.ones(a.size, dtype=np.int64),
            rng.integers(2, 6, a.size),
            rng.integers(6, 21, a.size),
            rng.integers(21, 61, a.size),
        ],
        rng.integers(61, 260, a.size),
    )
    susp = _intervals(rng, a, np.maximum(list_pos[a] + 6, 0), live_hi[a] - 1, length)
    # Many delisting firms are suspended in their last weeks.
    pre = np.flatnonzero(delisted & (rng.random(n) < 0.4))
    if pre.size:
        L = rng.integers(10, 60, pre.size)
        s = np.maximum(delist_pos[pre] - L, np.maximum(list_pos[pre] + 6, 0))
        susp = np.concatenate([susp, np.stack([pre, s, delist_pos[pre]], axis=1)])

    # ST episodes: delisting firms for their last ~1-1.5 years, plus others (~3-4% at a time).
    p_st = np.minimum(0.03 * years * np.exp(-0.9 * quality) / 1.5, 0.8)
    st_a = np.flatnonzero((rng.random(n) < p_st) & ~delisted)
    st_len = rng.integers(120, 600, st_a.size)
    st = _intervals(rng, st_a, np.maximum(list_pos[st_a] + 250, 0), live_hi[st_a] - 20, st_len)
    dl = np.flatnonzero(delisted)
    if dl.size:
        s = np.maximum(
            delist_pos[dl] - rng.integers(200, 380, dl.size), np.maximum(list_pos[dl] + 1, 0)
        )
        st = np.concatenate([st, np.stack([dl, s, delist_pos[dl]], axis=1)])

    syl = rng.integers(0, len(_SYLLABLES), (n, 2))
    names = np.char.add(
        np.char.add(
            np.char.capitalize(np.char.add(_SYLLABLES[syl[:, 0]], _SYLLABLES[syl[:, 1]])), " "
        ),
        _SUFFIX[rng.integers(0, len(_SUFFIX), n)],
    )

    return Universe(
        dates=dates,
        codes=codes,
        names=names.astype(str),
        exchange=np.array(schema.EXCHANGES)[exch],
        exchange_code=exch.astype(np.int8),
        board_name=np.array(BOARD_NAMES)[board],
        board=board.astype(np.int8),
        list_date=list_date.astype("datetime64[ns]"),
        delist_date=delist_date,
        list_pos=list_pos,
        delist_pos=delist_pos,
        nolimit_days=nolimit,
        old_ipo=old_ipo,
        soe=soe,
        industry0=industry0,
        chg_pos=chg_pos,
        chg_ind=chg_ind,
        quality=quality,
        beta=beta,
        sigma=sigma,
        turn_base=turn_base,
        price0=price0,
        pop_log=pop_log,
        total_share0=total_share0,
        float0=float0,
        pb0=pb0,
        adj0=adj0,
        susp=susp,
        st=st,
    )


def interval_mask(intervals: np.ndarray, n: int, t0: int, t1: int) -> np.ndarray:
    """Boolean (t1-t0, n) mask of the union of [start, end) intervals per asset."""
    tb = t1 - t0
    diff = np.zeros((tb + 1, n), dtype=np.int32)
    if intervals.size:
        a, s, e = (
            intervals[:, 0],
            np.clip(intervals[:, 1], t0, t1),
            np.clip(intervals[:, 2], t0, t1),
        )
        ok = e > s
        np.add.at(diff, (s[ok] - t0, a[ok]), 1)
        np.add.at(diff, (e[ok] - t0, a[ok]), -1)
    return np.cumsum(diff[:-1], axis=0) > 0


def industry_block(u: Universe, t0: int, t1: int) -> np.ndarray:
    """SW level-1 position (0..30) per (date, asset) for dates t0..t1-1."""
    t = np.arange(t0, t1)[:, None]
    ind = np.where(t >= u.chg_pos[0][None, :], u.chg_ind[0][None, :], u.industry0[None, :])
    ind = np.where(t >= u.chg_pos[1][None, :], u.chg_ind[1][None, :], ind)
    return ind.astype(np.int32)
