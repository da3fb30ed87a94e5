# ruff: noqa: NPY002 -- numba kernels can only use the legacy np.random API, seeded per block
"""Synthetic market, part 3: the numba kernel that simulates one block of trading days.

One call simulates ``tb`` consecutive dates for all assets (prices, limits, volumes,
valuations) and the broad indices built from them, carrying all state (last close, return
history, point-in-time fundamentals, index membership) in arrays from block to block.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from quantdask.kernels.limits import limit_fraction, limit_prices, round_half_up_cents

# ---- planted effects (documented in synthetic_market's docstring) -----------------------
#: Daily drift per unit of the trailing 20-day log return (short-term reversal).
K_REVERSAL = -0.005
#: Daily drift per unit of the 12-1 month log return (250-day minus 20-day).
K_MOMENTUM = 0.0003
#: Daily drift per cross-sectional standard deviation of log total market value.
K_SIZE = -0.00015
#: Daily drift per cross-sectional standard deviation of log P/B.
K_VALUE = -0.00015
#: Daily drift per cross-sectional standard deviation of point-in-time ROE (TTM).
K_ROE = 0.00025
#: Daily drift per cross-sectional standard deviation of TTM net-profit growth (YoY).
K_GROWTH = 0.0002

# ---- time variation of the premia and volatility regimes -------------------------------
# Each factor's premium on day t is K_f * (1 + z_f(t)), z_f = fast + slow AR(1) components
# (one pair per factor, independent across factors), so the premium keeps its sign on
# average but has spells, and whole years, where it is zero or reversed.
#: AR(1) coefficient and stationary std (in units of the mean premium), fast component.
PREMIUM_PHI_FAST, PREMIUM_SD_FAST = 0.8, 3.0
#: AR(1) coefficient and stationary std (in units of the mean premium), slow regimes.
PREMIUM_PHI_SLOW, PREMIUM_SD_SLOW = 0.99, 0.5
#: The multiplier 1 + z is clipped to 1 +/- PREMIUM_CLIP (symmetric: the mean is kept), so a
#: reversed premium never turns the 20-day reversal into explosive momentum feedback.
PREMIUM_CLIP = 3.0
#: Daily probability of entering / leaving a turbulent (crash or bubble) market regime.
TURBULENT_ENTER, TURBULENT_EXIT = 1.0 / 500.0, 1.0 / 60.0
#: Long-run market variance multiple in the turbulent regime (market vol ~2.8x calm).
TURBULENT_VAR = 8.0
#: Factor order in the premium state (rows of the ``scal`` premium slots).
N_PREMIA = 6

# ---- the market factor: level, volatility and its anchor to a trend ---------------------
# The market factor's daily log return is MARKET_DRIFT - MARKET_KAPPA * x + shock, with x
# the whole market's cumulative log deviation from its trend: the sum over past days of
# log(1 + the cap-weighted return of every traded stock, listing days excluded) minus
# MARKET_TREND. The cap-weighted market is a random walk pulled back to its trend
# (half-life ~100 trading days), so over multi-year spans it returns its trend plus a
# deviation of a few % a year whatever the seed, instead of the random walk's +/-10% (and
# more once industry, idiosyncratic and premium noise add up): broad indices stay within
# what the real market has shown (cap-weighted broad indices of the order of 5-15% a year,
# the daily-rebalanced equal-weight basket ~23% a year on 2005-2022; the stocks' own
# variance and the size premium make the equal-weight basket's lead).
#: Mean daily log return of the market factor (before the stocks' own variance).
MARKET_DRIFT = 0.0002
#: Daily log trend of the cap-weighted whole market (~11% a year).
MARKET_TREND = math.log(1.11) / 252.0
#: Daily pull of the market factor back to the trend (per unit of log deviation).
MARKET_KAPPA = 1.0 / 150.0
#: Calm-regime daily market volatility (GARCH long-run level; ~22% a year).
MARKET_VOL = 0.014

#: Slots of ``scal``: 0 ring pointer, 1 GARCH variance, 2 last market shock, 3 regime
#: (0 calm, 1 turbulent), 4.. fast z then slow z per factor, then the market's log
#: deviation from its trend.
SCAL_REGIME, SCAL_FAST, SCAL_SLOW = 3, 4, 4 + N_PREMIA
SCAL_MARKET_DEV = 4 + 2 * N_PREMIA
N_SCAL = 5 + 2 * N_PREMIA


def initial_scal(rng: np.random.Generator) -> np.ndarray:
    """Kernel scalar state at the first date: premia drawn from their stationary laws."""
    scal = np.zeros(N_SCAL)
    scal[1] = MARKET_VOL**2
    scal[SCAL_FAST : SCAL_FAST + N_PREMIA] = rng.normal(0.0, PREMIUM_SD_FAST, N_PREMIA)
    scal[SCAL_SLOW : SCAL_SLOW + N_PREMIA] = rng.normal(0.0, PREMIUM_SD_SLOW, N_PREMIA)
    return scal


# State rows (per asset).
S_CLOSE, S_PENDING, S_ADJ, S_TSHARE, S_DPS, S_BONUS = 0, 1, 2, 3, 4, 5
S_TTM_NI, S_TTM_REV, S_TTM_DIV, S_EQUITY, S_GROWTH = 6, 7, 8, 9, 10
S_TMV, S_CMV, S_SUM20, S_SUM250 = 11, 12, 13, 14
N_STATE = 15
RING = 250

# Index kinds (rows of the index arrays; the first 8 follow schema.INDICES, 8 is the A50).
N_INDEX = 9
#: Real constituent counts at a 5,000-stock universe; scaled by n_listed / 5000.
INDEX_COUNTS = np.array([50, 300, 500, 1000, 2000, 0, 100, 100, 50], dtype=np.int64)
#: Filter: 0 SH, 1 SH+SZ, 2 all listed, 3 ChiNext, 4 SOE.
INDEX_FILTER = np.array([0, 1, 1, 1, 1, 2, 3, 4, 1], dtype=np.int64)
INDEX_BASE_LEVEL = np.array([1000.0] * 8 + [5000.0])
#: Floor of a size-ranked index's constituent count in small markets (see index_count).
INDEX_MIN_MEMBERS = 20


@numba.njit(cache=True)
def index_count(n_listed, k):  # pragma: no cover - numba
    """Constituents of index ``k`` at a review with ``n_listed`` stocks listed.

    The real count scaled to the universe, ``ceil(n_listed * INDEX_COUNTS[k] / 5000)``, but
    at least ``min(10, n_listed // 10)`` and at least 3, so that the size-ranked indices of
    a small market (a CSI 300 of 6 stocks in a 120-stock market, a CSI SOE of 3) are not
    dominated by one or two stocks' own noise.
    """
    scaled = math.ceil(n_listed * INDEX_COUNTS[k] / 5000.0)
    return max(3, min(INDEX_MIN_MEMBERS, n_listed // 6), scaled)


@numba.njit(cache=True, inline="always")
def _r2(x):  # pragma: no cover - numba
    """Round to 0.01 CNY half up, as the exchanges do (the shared limit-rule rounding)."""
    return round_half_up_cents(x)


@numba.njit(cache=True)
def _zstats(v, ok):  # pragma: no cover - numba
    s = 0.0
    s2 = 0.0
    c = 0
    for i in range(v.shape[0]):
        if ok[i] and np.isfinite(v[i]):
            s += v[i]
            s2 += v[i] * v[i]
            c += 1
    if c < 3:
        return 0.0, 0.0
    m = s / c
    var = s2 / c - m * m
    if var <= 0:
        return m, 0.0
    return m, 1.0 / math.sqrt(var)


@numba.njit(cache=True)
def simulate_block(
    seed,
    t0,
    tb,
    board,
    exch,
    soe,
    list_pos,
    delist_pos,
    nolimit,
    old_ipo,
    beta,
    sigma,
    turn_base,
    float0,
    issue_price,
    pop_log,
    susp,
    st,
    ind,
    regime,
    review,
    idx_base,
    f_day,
    f_asset,
    f_vals,
    c_day,
    c_asset,
    c_cash,
    c_bonus,
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
):  # pragma: no cover - numba
    """Simulate dates ``t0 .. t0+tb-1``; fills ``out``, ``out_idx``, ``out_w``; updates state."""
    np.random.seed(seed)
    n = board.shape[0]
    n_ind = 31
    h0 = MARKET_VOL * MARKET_VOL
    g = np.zeros(n_ind)
    okz = np.zeros(n, dtype=np.bool_)
    lmv = np.full(n, np.nan)
    lpb = np.full(n, np.nan)
    roe = np.full(n, np.nan)
    traded = np.zeros(n, dtype=np.bool_)
    ret_c = np.zeros(n)
    ret_o = np.zeros(n)
    ret_h = np.zeros(n)
    ret_l = np.zeros(n)
    key = np.empty(n)
    prem = np.zeros(N_PREMIA)
    k_mean = np.array([K_REVERSAL, K_MOMENTUM, K_SIZE, K_VALUE, K_ROE, K_GROWTH])
    e_fast = PREMIUM_SD_FAST * math.sqrt(1.0 - PREMIUM_PHI_FAST**2)
    e_slow = PREMIUM_SD_SLOW * math.sqrt(1.0 - PREMIUM_PHI_SLOW**2)
    for tt in range(tb):
        t = t0 + tt
        # -- announcements known from today, and corporate actions going ex today --
        while ptr[0] < f_day.shape[0] and f_day[ptr[0]] <= t:
            a = f_asset[ptr[0]]
            S[S_TTM_NI, a] = f_vals[ptr[0], 0]
            S[S_TTM_REV, a] = f_vals[ptr[0], 1]
            S[S_TTM_DIV, a] = f_vals[ptr[0], 2]
            S[S_EQUITY, a] = f_vals[ptr[0], 3]
            S[S_GROWTH, a] = f_vals[ptr[0], 4]
            ptr[0] += 1
        while ptr[1] < c_day.shape[0] and c_day[ptr[1]] <= t:
            a = c_asset[ptr[1]]
            S[S_DPS, a] += c_cash[ptr[1]] / (S[S_TSHARE, a] * 1e4)
            S[S_BONUS, a] *= 1.0 + c_bonus[ptr[1]]
            S[S_TSHARE, a] *= 1.0 + c_bonus[ptr[1]]
            ptr[1] += 1

        # -- cross-sectional exposures from yesterday's state --
        n_listed = 0
        for i in range(n):
            live = list_pos[i] < t and t < delist_pos[i] and np.isfinite(S[S_CLOSE, i])
            okz[i] = live
            if list_pos[i] <= t and t < delist_pos[i]:
                n_listed += 1
            if live:
                lmv[i] = math.log(S[S_TMV, i]) if S[S_TMV, i] > 0 else np.nan
                eqv = S[S_EQUITY, i]
                lpb[i] = (
                    math.log(S[S_TMV, i] * 1e4 / eqv) if eqv > 0 and S[S_TMV, i] > 0 else np.nan
                )
                roe[i] = S[S_TTM_NI, i] / eqv if eqv > 0 else np.nan
            else:
                lmv[i] = np.nan
                lpb[i] = np.nan
                roe[i] = np.nan
        m_mv, s_mv = _zstats(lmv, okz)
        m_pb, s_pb = _zstats(lpb, okz)
        m_roe, s_roe = _zstats(roe, okz)
        m_g, s_g = _zstats(S[S_GROWTH], okz)
        # the reversal and momentum exposures relative to the day's cross-section, so the
        # planted effects move stocks against each other and never the market as a whole
        # (a market-wide 20-day or 12-1 month feedback would push the market's multi-year
        # return far from its trend)
        m_20, _ = _zstats(S[S_SUM20], okz)
        m_250, _ = _zstats(S[S_SUM250], okz)

        # -- index membership reviews (June / December, or first day of the index) --
        for k in range(member.shape[0]):
            if t < idx_base[k]:
                continue
            for i in range(n):
                if t >= delist_pos[i]:
                    member[k, i] = False
            filt = INDEX_FILTER[k]
            if filt == 2:
                for i in range(n):
                    member[k, i] = list_pos[i] < t and t < delist_pos[i]
                continue
            if not (review[tt] or not idx_valid[k]):
                continue
            cnt = 0
            for i in range(n):
                elig = okz[i] and (t - list_pos[i] >= 60) and not st[tt, i]
                if filt == 0:
                    elig = elig and exch[i] == 0
                elif filt == 1:
                    elig = elig and exch[i] != 2
                elif filt == 3:
                    elig = elig and board[i] == 2
                elif filt == 4:
                    elig = elig and soe[i]
                if elig and np.isfinite(S[S_TMV, i]):
                    key[i] = -S[S_TMV, i]
                    cnt += 1
                else:
                    key[i] = np.inf
            order = np.argsort(key)
            lo = 0
            if 2 <= k <= 4:  # CSI 500 follows CSI 300 in the size ranking, then 1000, 2000
                for j in range(1, k):
                    lo += index_count(n_listed, j)
            hi = lo + index_count(n_listed, k)
            hi = min(hi, cnt)
            for i in range(n):
                member[k, i] = False
            for r in range(lo, hi):
                member[k, order[r]] = True

        # -- volatility regime, market and industry shocks --
        if scal[SCAL_REGIME] == 0.0:
            if np.random.random() < TURBULENT_ENTER:
                scal[SCAL_REGIME] = 1.0
        elif np.random.random() < TURBULENT_EXIT:
            scal[SCAL_REGIME] = 0.0
        turb = scal[SCAL_REGIME] > 0.0
        h = scal[1]
        h = h0 * 0.02 * (TURBULENT_VAR if turb else 1.0) + 0.08 * scal[2] * scal[2] + 0.9 * h
        scal[1] = h
        shock = math.sqrt(h) * np.random.standard_t(5) / math.sqrt(5.0 / 3.0)
        m = MARKET_DRIFT - MARKET_KAPPA * scal[SCAL_MARKET_DEV] + shock
        m = min(max(m, -0.09), 0.09)
        scal[2] = shock
        vs = (h / h0) ** 0.25
        # -- today's factor premia: mean x (1 + persistent noise), noisier when volatile --
        for f in range(N_PREMIA):
            zf = PREMIUM_PHI_FAST * scal[SCAL_FAST + f] + e_fast * vs * np.random.normal()
            zs = PREMIUM_PHI_SLOW * scal[SCAL_SLOW + f] + e_slow * np.random.normal()
            scal[SCAL_FAST + f] = zf
            scal[SCAL_SLOW + f] = zs
            prem[f] = k_mean[f] * min(max(1.0 + zf + zs, 1.0 - PREMIUM_CLIP), 1.0 + PREMIUM_CLIP)
        for k in range(n_ind):
            g[k] = np.random.normal(0.0, 0.007) * vs
            if np.random.random() < 0.015:  # sector theme day
                g[k] += np.random.normal(0.0, 0.04)

        pos = int(scal[0])
        mkt_w = 0.0  # the whole market's cap-weighted return today (yesterday's total_mv)
        mkt_r = 0.0
        p20 = (pos - 20) % RING
        for i in range(n):
            traded[i] = False
            r_new = 0.0
            if t < list_pos[i] or t >= delist_pos[i] or susp[tt, i]:
                # missing cell: leave NaN, shift the return history
                S[S_SUM20, i] += r_new - ring[p20, i]
                S[S_SUM250, i] += r_new - ring[pos, i]
                ring[pos, i] = r_new
                continue
            days = t - list_pos[i]
            if days == 0:
                pre = _r2(issue_price[i])
                S[S_PENDING, i] = pop_log[i]
            else:
                pre = _r2((S[S_CLOSE, i] - S[S_DPS, i]) / S[S_BONUS, i])
                pre = max(pre, 0.01)
                if S[S_DPS, i] != 0.0 or S[S_BONUS, i] != 1.0:
                    S[S_ADJ, i] *= S[S_CLOSE, i] / pre
                    S[S_DPS, i] = 0.0
                    S[S_BONUS, i] = 1.0
            upf, dnf = limit_fraction(
                # limit regime of the date (kernels.limits.limit_regime): 0 before
                # 1996-12-16 (no daily limits), 1 limits, 2 after the ChiNext reform
                board[i],
                st[tt, i],
                regime[tt],
                days,
                nolimit[i],
                old_ipo[i],
            )
            up, dn = limit_prices(pre, upf, dnf)
            # planted expected return
            drift = prem[0] * (S[S_SUM20, i] - m_20) + prem[1] * (
                S[S_SUM250, i] - m_250 - (S[S_SUM20, i] - m_20)
            )
            if s_mv > 0 and np.isfinite(lmv[i]):
                drift += prem[2] * (lmv[i] - m_mv) * s_mv
            if s_pb > 0 and np.isfinite(lpb[i]):
                drift += prem[3] * max(min((lpb[i] - m_pb) * s_pb, 3.0), -3.0)
            if s_roe > 0 and np.isfinite(roe[i]):
                drift += prem[4] * max(min((roe[i] - m_roe) * s_roe, 3.0), -3.0)
            if s_g > 0 and np.isfinite(S[S_GROWTH, i]):
                drift += prem[5] * max(min((S[S_GROWTH, i] - m_g) * s_g, 3.0), -3.0)
            eps = np.random.standard_t(4) / math.sqrt(2.0)
            r = beta[i] * m + g[ind[tt, i]] + sigma[i] * vs * eps + drift
            if np.random.random() < 0.025 * vs:  # company news, more of it when volatile
                r += np.random.normal(0.0, 0.08)
            r += S[S_PENDING, i]
            latent = pre * math.exp(r)
            one_word = False
            if np.isfinite(up) and latent >= up:
                close = up
                S[S_PENDING, i] = math.log(latent / up)
                one_word = S[S_PENDING, i] > 0.03
            elif np.isfinite(dn) and latent <= dn:
                close = dn
                S[S_PENDING, i] = math.log(latent / dn)
                one_word = S[S_PENDING, i] < -0.03
            else:
                close = max(_r2(latent), 0.01)
                if np.isfinite(up):
                    close = min(max(close, dn), up)
                S[S_PENDING, i] = 0.0
            sg = sigma[i] * vs
            if one_word:
                op = close
                hi_ = close
                lo_ = close
            else:
                op = _r2(pre * math.exp(0.35 * r + np.random.normal(0.0, 0.4 * sg)))
                if np.isfinite(up):
                    op = min(max(op, dn), up)
                op = max(op, 0.01)
                hi_ = _r2(max(op, close) * math.exp(abs(np.random.normal(0.0, 0.5 * sg))))
                lo_ = _r2(min(op, close) * math.exp(-abs(np.random.normal(0.0, 0.5 * sg))))
                if np.isfinite(up):
                    hi_ = min(hi_, up)
                    lo_ = max(lo_, dn)
                hi_ = max(hi_, op, close)
                lo_ = max(min(lo_, op, close), 0.01)
            # shares, turnover, volume, amount
            if days < 242:
                ff = float0[i]
            elif days < 726:
                ff = float0[i] + (0.95 - float0[i]) * 0.6
            else:
                ff = 0.95
            fs = S[S_TSHARE, i] * ff
            rc = math.log(close / pre)
            tr = turn_base[i] * math.exp(np.random.normal(0.0, 0.35)) * (1.0 + 8.0 * abs(rc)) * vs
            if days < 5 and not one_word:
                tr = np.random.uniform(30.0, 75.0)
            if one_word:
                tr *= 0.08
            if st[tt, i]:
                tr *= 0.7
            tr = min(max(tr, 0.01), 95.0)
            vol = max(float(np.rint(tr * fs)), 1.0)
            tr = vol / fs
            amount = vol * (op + hi_ + lo_ + close) / 4.0 / 10.0
            tmv = close * S[S_TSHARE, i]
            cmv = close * fs
            out[0, tt, i] = op
            out[1, tt, i] = hi_
            out[2, tt, i] = lo_
            out[3, tt, i] = close
            out[4, tt, i] = pre
            out[5, tt, i] = vol
            out[6, tt, i] = amount
            out[7, tt, i] = S[S_ADJ, i]
            out[8, tt, i] = tr
            out[9, tt, i] = fs
            out[10, tt, i] = S[S_TSHARE, i]
            out[11, tt, i] = tmv
            out[12, tt, i] = cmv
            ni = S[S_TTM_NI, i]
            out[13, tt, i] = tmv * 1e4 / ni if ni > 0 else np.nan
            eqv = S[S_EQUITY, i]
            out[14, tt, i] = tmv * 1e4 / eqv if eqv > 0 else np.nan
            rv = S[S_TTM_REV, i]
            out[15, tt, i] = tmv * 1e4 / rv if rv > 0 else np.nan
            dv = S[S_TTM_DIV, i]
            out[16, tt, i] = dv / (tmv * 1e4) * 100.0 if dv >= 0 else np.nan
            out[17, tt, i] = up
            out[18, tt, i] = dn
            S[S_CLOSE, i] = close
            if days > 0 and np.isfinite(S[S_TMV, i]) and S[S_TMV, i] > 0:
                mkt_w += S[S_TMV, i]
                mkt_r += S[S_TMV, i] * (close / pre - 1.0)
            S[S_TMV, i] = tmv
            S[S_CMV, i] = cmv
            traded[i] = True
            ret_c[i] = close / pre - 1.0
            ret_o[i] = op / pre - 1.0
            ret_h[i] = hi_ / pre - 1.0
            ret_l[i] = lo_ / pre - 1.0
            r_new = rc
            S[S_SUM20, i] += r_new - ring[p20, i]
            S[S_SUM250, i] += r_new - ring[pos, i]
            ring[pos, i] = r_new
        scal[0] = (pos + 1) % RING
        if mkt_w > 0:
            scal[SCAL_MARKET_DEV] += math.log(1.0 + mkt_r / mkt_w) - MARKET_TREND

        # -- indices: today's return with yesterday's weights, then new weights --
        for k in range(member.shape[0]):
            if t < idx_base[k]:
                continue
            prev = idx_level[k]
            if idx_valid[k]:
                sc = 0.0
                so = 0.0
                sh = 0.0
                sl = 0.0
                for i in range(n):
                    w = weight[k, i]
                    if w > 0 and traded[i]:
                        sc += w * ret_c[i]
                        so += w * ret_o[i]
                        sh += w * ret_h[i]
                        sl += w * ret_l[i]
                c_ = prev * (1.0 + sc)
                o_ = prev * (1.0 + so)
                h_ = max(prev * (1.0 + sh), o_, c_)
                l_ = min(prev * (1.0 + sl), o_, c_)
                pc_ = prev
            else:
                c_ = prev
                o_ = prev
                h_ = prev
                l_ = prev
                pc_ = np.nan
            tmv_s = 0.0
            cmv_s = 0.0
            ni_s = 0.0
            eq_s = 0.0
            dv_s = 0.0
            vol_s = 0.0
            amt_s = 0.0
            cnt = 0
            for i in range(n):
                if member[k, i] and np.isfinite(S[S_CMV, i]):
                    cnt += 1
                    tmv_s += S[S_TMV, i]
                    cmv_s += S[S_CMV, i]
                    if np.isfinite(S[S_TTM_NI, i]):
                        ni_s += S[S_TTM_NI, i]
                    if np.isfinite(S[S_EQUITY, i]):
                        eq_s += S[S_EQUITY, i]
                    if np.isfinite(S[S_TTM_DIV, i]):
                        dv_s += S[S_TTM_DIV, i]
                    if traded[i]:
                        vol_s += out[5, tt, i]
                        amt_s += out[6, tt, i]
            if cnt == 0:
                idx_valid[k] = False
                for i in range(n):
                    weight[k, i] = 0.0
                continue
            for i in range(n):
                if member[k, i] and np.isfinite(S[S_CMV, i]):
                    weight[k, i] = S[S_CMV, i] / cmv_s
                else:
                    weight[k, i] = 0.0
                    member[k, i] = False
                if k < out_w.shape[1]:
                    out_w[tt, k, i] = weight[k, i]
            idx_valid[k] = True
            idx_level[k] = c_
            out_idx[0, tt, k] = o_
            out_idx[1, tt, k] = h_
            out_idx[2, tt, k] = l_
            out_idx[3, tt, k] = c_
            out_idx[4, tt, k] = pc_
            out_idx[5, tt, k] = vol_s
            out_idx[6, tt, k] = amt_s
            out_idx[7, tt, k] = tmv_s
            out_idx[8, tt, k] = cmv_s
            out_idx[9, tt, k] = tmv_s * 1e4 / ni_s if ni_s > 0 else np.nan
            out_idx[10, tt, k] = tmv_s * 1e4 / eq_s if eq_s > 0 else np.nan
            out_idx[11, tt, k] = dv_s / (tmv_s * 1e4) * 100.0
