"""Synthetic market, part 2: quarterly statements, announcements, restatements, dividends.

Statements are simulated for all assets at once, one quarter at a time (vectorised over
assets). Point-in-time trailing-twelve-month figures per announcement come from a numba
kernel that walks each asset's announcements in order, exactly as a reader of the
``fundamentals`` node would (latest announced value per period wins).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import pandas as pd

from quantdask.io import schema
from quantdask.io._synth_universe import BANK_POS, TECH_MASK, Universe

_DAY = np.timedelta64(1, "D")


@dataclass
class Fundamentals:
    records: dict[str, np.ndarray]  # fundamentals node columns, sorted by ann_date
    f_day: np.ndarray  # int64: first window position where the announcement is known
    f_asset: np.ndarray
    f_vals: np.ndarray  # (k, 5): ttm_ni, ttm_rev, ttm_div, equity, growth
    c_day: np.ndarray  # corporate actions: ex-date position
    c_asset: np.ndarray
    c_cash: np.ndarray  # CNY paid in total
    c_bonus: np.ndarray  # bonus shares per share


def _period_end(q: np.ndarray) -> np.ndarray:
    year = q // 4
    month = (q % 4) * 3 + 3
    first_next = pd.to_datetime(
        pd.DataFrame({"year": year + (month == 12), "month": month % 12 + 1, "day": 1})
    ).values.astype("datetime64[D]")
    return first_next - _DAY


def _to_weekday(d: np.ndarray) -> np.ndarray:
    """Move Saturdays and Sundays back to Friday."""
    dow = (d.astype("datetime64[D]").astype(np.int64) + 3) % 7
    return d - np.where(dow == 5, 1, np.where(dow == 6, 2, 0)).astype("timedelta64[D]")


@numba.njit(cache=True)
def _ttm_kernel(rec_asset, rec_q, vals, n_q):  # pragma: no cover - numba
    """Point-in-time TTM per announcement.

    ``vals`` columns: ytd n_income_attr_p, ytd revenue, ytd div_cash, total_hldr_eqy.
    Records must be sorted by asset then announcement order. Returns (k, 5): ttm_ni,
    ttm_rev, ttm_div, equity, growth of ttm_ni over the year before.
    """
    k = rec_asset.shape[0]
    out = np.full((k, 5), np.nan)
    known = np.full((n_q, 4), np.nan)
    latest = -1
    cur = -1
    for r in range(k):
        a = rec_asset[r]
        if a != cur:
            known[:, :] = np.nan
            latest = -1
            cur = a
        q = rec_q[r]
        for j in range(4):
            known[q, j] = vals[r, j]
        if q > latest:
            latest = q
        L = latest
        for j in range(3):
            out[r, j] = _ttm_at(known, L, j)
        out[r, 3] = known[L, 3]
        now = out[r, 0]
        before = _ttm_at(known, L - 4, 0)
        if np.isfinite(now) and np.isfinite(before) and before != 0.0:
            g = (now - before) / abs(before)
            out[r, 4] = min(max(g, -3.0), 3.0)
    return out


@numba.njit(cache=True)
def _ttm_at(known, L, j):  # pragma: no cover - numba
    if L < 0:
        return np.nan
    qi = L % 4
    if qi == 3:
        return known[L, j]
    if L - 4 < 0:
        return np.nan
    return known[L, j] + known[L - qi - 1, j] - known[L - 4, j]


def build_fundamentals(rng: np.random.Generator, u: Universe) -> Fundamentals:
    """Simulate statements, announcements, restatements and dividends for universe ``u``."""
    dates = u.dates
    start, end = dates[0], dates[-1]
    n = len(u.codes)
    T = len(dates)
    q0 = (start.year - 2) * 4
    q_last = end.year * 4 + (end.month - 1) // 3 - 1  # last quarter ended on or before end
    if end.month in (3, 6, 9, 12) and end.is_month_end:
        q_last += 1
    qs = np.arange(q0, q_last + 1)
    Q = qs.size
    end_dates = _period_end(qs)

    ref_date = np.maximum(
        u.list_date.astype("datetime64[D]"), start.to_datetime64().astype("datetime64[D]")
    )
    ref_q = (
        pd.DatetimeIndex(ref_date).year * 4 + (pd.DatetimeIndex(ref_date).month - 1) // 3
    ).values
    mv_ref = u.price0 * u.total_share0 * 1e4  # CNY
    eq_ref = mv_ref / u.pb0
    eq = eq_ref / 1.06 ** ((ref_q - q0) / 4.0)

    quality = u.quality
    bank = u.industry0 == BANK_POS
    tech = TECH_MASK[u.industry0]
    roe_mu = 0.075 + 0.05 * quality
    at = np.where(bank, 0.25, np.exp(rng.normal(np.log(0.9), 0.5, n)))  # revenue / equity
    lev = np.where(bank, rng.uniform(11.0, 15.0, n), np.exp(rng.normal(np.log(2.0), 0.3, n)))
    gm0 = np.clip(0.25 + 0.08 * quality + rng.normal(0, 0.08, n), 0.03, 0.85)
    sell = rng.uniform(0.02, 0.12, n)
    admin = rng.uniform(0.03, 0.1, n)
    rd = np.where(tech | (u.board == 1), rng.uniform(0.04, 0.15, n), rng.uniform(0.005, 0.04, n))
    capex = rng.uniform(0.02, 0.15, n)
    fa = rng.uniform(0.05, 0.4, n)
    ar = rng.uniform(0.05, 0.35, n)
    adv = rng.uniform(0.01, 0.15, n)
    gw = np.where(rng.random(n) < 0.4, rng.uniform(0.0, 0.08, n), 0.0)
    prod = np.exp(rng.normal(np.log(1.5e6), 0.4, n))  # revenue per employee, CNY
    rd_staff = np.where(tech, rng.uniform(0.15, 0.5, n), rng.uniform(0.03, 0.15, n))
    payout = rng.uniform(0.2, 0.5, n)
    pays = rng.random(n) < 0.75
    top5c = rng.uniform(5, 70, n)
    top5s = rng.uniform(5, 70, n)
    season_ni = np.array([0.85, 1.05, 0.95, 1.15])
    season_rev = np.array([0.9, 1.0, 1.0, 1.1])

    flow = {k: np.zeros((Q, n)) for k in schema.FLOW_ITEMS}  # YTD
    stock = {k: np.full((Q, n), np.nan) for k in schema.STOCK_ITEMS}
    x = rng.normal(0, 0.03, n)
    div_due = np.zeros((Q + 8, n))  # cash dividend paid in quarter
    c_rows: list[np.ndarray] = []
    annual_ni = np.zeros(n)
    for j in range(Q):  # quarters, vectorised over assets
        qi = qs[j] % 4
        year = qs[j] // 4
        x = 0.8 * x + rng.normal(0, 0.03, n)
        roe = roe_mu + x
        ni = roe / 4.0 * eq * season_ni[qi]
        rev = np.maximum(eq, 1e6) * at / 4.0 * season_rev[qi] * np.exp(rng.normal(0, 0.06, n))
        gm = np.clip(gm0 + rng.normal(0, 0.02, n), 0.01, 0.95)
        dpaid = div_due[j]
        single = {
            "revenue": rev,
            "oper_cost": rev * (1 - gm),
            "sell_exp": rev * sell,
            "admin_exp": rev * admin * np.exp(rng.normal(0, 0.1, n)),
            "rd_exp": rev * rd * np.exp(rng.normal(0, 0.1, n)),
            "ebit": ni / 0.85 + 0.01 * eq * (lev - 1) / 4.0,
            "n_income_attr_p": ni,
            "n_cashflow_act": ni * 1.1 + rev * rng.normal(0, 0.06, n),
            "n_cashflow_inv_act": -eq * capex / 4.0 * np.exp(rng.normal(0, 0.5, n))
            + np.where(rng.random(n) < 0.1, eq * 0.03, 0.0),
            "n_cash_flows_fnc_act": -dpaid + eq * rng.normal(0.0, 0.02, n),
            "div_cash": dpaid,
        }
        for k in schema.FLOW_ITEMS:
            flow[k][j] = single[k] + (flow[k][j - 1] if qi > 0 and j > 0 else 0.0)
        eq = eq + ni - dpaid
        ta = np.abs(eq) * lev * np.exp(rng.normal(0, 0.02, n))
        rev_ann = rev * 4.0
        stock["total_hldr_eqy"][j] = eq
        stock["total_assets"][j] = ta
        stock["total_liab"][j] = ta - eq
        stock["fix_assets"][j] = ta * fa * np.where(bank, 0.05, 1.0)
        stock["cip"][j] = ta * fa * 0.12 * np.exp(rng.normal(0, 0.5, n))
        stock["accounts_receiv"][j] = np.where(bank, np.nan, rev_ann * ar)
        end_j = end_dates[j]
        if end_j < np.datetime64("2020-01-01"):
            stock["adv_receipts"][j] = rev_ann * adv
        else:
            stock["adv_receipts"][j] = rev_ann * adv * 0.1
            stock["contract_liab"][j] = rev_ann * adv * 0.9
        stock["intan_assets"][j] = ta * 0.04
        stock["goodwill"][j] = ta * gw
        if qi in (1, 3):
            stock["employees"][j] = np.maximum(np.round(rev_ann / prod), 10)
        if qi == 3:
            stock["rd_staff"][j] = np.round(stock["employees"][j] * rd_staff)
            stock["top5_customer_share"][j] = np.clip(top5c + rng.normal(0, 3, n), 1, 100)
            stock["top5_supplier_share"][j] = np.clip(top5s + rng.normal(0, 3, n), 1, 100)
        stock["capital_adequacy"][j] = np.where(bank, rng.normal(14.0, 1.0, n), np.nan)
        stock["provision_coverage"][j] = np.where(bank, rng.normal(250.0, 60.0, n), np.nan)
        annual_ni = annual_ni + ni if qi > 0 else ni
        if qi == 3:
            # Dividend for this year, paid (ex-date) in June/July next year.
            cash = np.where(pays & (annual_ni > 0), payout * annual_ni, 0.0)
            ex = np.datetime64(f"{year + 1}-06-01") + rng.integers(0, 61, n).astype(
                "timedelta64[D]"
            )
            ex_q = np.where(ex < np.datetime64(f"{year + 1}-07-01"), j + 2, j + 3)
            bonus = np.where(rng.random(n) < 0.07, rng.choice([0.2, 0.3, 0.5, 1.0], n), 0.0)
            np.add.at(div_due, (ex_q, np.arange(n)), cash)
            c_rows.append(
                np.stack([ex.astype(np.int64).astype(float), np.arange(n), cash, bonus], axis=1)
            )

    # ---- records: which periods each asset reports, and when ----
    ld = u.list_date.astype("datetime64[D]")
    dd = u.delist_date.astype("datetime64[D]")
    active = end_dates[:, None] >= (ld - np.timedelta64(3 * 365, "D"))[None, :]
    qi_grid = (qs % 4)[:, None]
    year_grid = (qs // 4)[:, None]
    deadline = np.where(
        qi_grid == 0,
        _md(year_grid, 4, 30),
        np.where(
            qi_grid == 1,
            _md(year_grid, 8, 31),
            np.where(qi_grid == 2, _md(year_grid, 10, 31), _md(year_grid + 1, 4, 30)),
        ),
    )
    late = rng.random((Q, n))
    lag_late = np.floor(rng.random((Q, n)) * 14)
    far = rng.random((Q, n))
    lag_far = np.select(
        [qi_grid == 0, qi_grid == 1, qi_grid == 2],
        [14 + far * 8, 14 + far * 34, 10 + far * 10],
        14 + far * 86,
    )
    p_late = np.select([qi_grid == 0, qi_grid == 1, qi_grid == 2], [0.6, 0.55, 0.65], 0.5)
    lag = np.where(late < p_late, lag_late, np.floor(lag_far)).astype("timedelta64[D]")
    ann = _to_weekday(deadline - lag)
    # Many companies publish the annual report and next Q1 on the same late-April day.
    joint = np.zeros((Q, n), dtype=bool)
    joint[1:] = (qi_grid[1:] == 0) & (rng.random((Q - 1, n)) < 0.6)
    prev_ann = np.empty_like(ann)
    prev_ann[1:] = ann[:-1]
    prev_ann[0] = ann[0]
    joint &= prev_ann >= deadline - np.timedelta64(14, "D")
    ann = np.where(joint, prev_ann, ann)
    ok = active & (ann <= end.to_datetime64().astype("datetime64[D]"))
    ok &= np.isnat(dd)[None, :] | (ann < dd[None, :])
    jj, ii = np.nonzero(ok)
    items = list(schema.STATEMENT_ITEMS)
    vals = np.stack([flow[k][jj, ii] if k in flow else stock[k][jj, ii] for k in items], axis=1)
    rec_ann = ann[jj, ii]
    flag = np.zeros(jj.size, dtype=np.int8)

    # Restatements: ~3% of reports re-announced 1-12 months later with other values.
    r = np.flatnonzero(rng.random(jj.size) < 0.03)
    r_ann = _to_weekday(rec_ann[r] + rng.integers(30, 365, r.size).astype("timedelta64[D]"))
    keep = r_ann <= end.to_datetime64().astype("datetime64[D]")
    keep &= np.isnat(dd[ii[r]]) | (r_ann < dd[ii[r]])
    r, r_ann = r[keep], r_ann[keep]
    r_vals = vals[r] * (
        1.0
        + rng.normal(0, 0.06, (r.size, 1)) * np.where(np.isin(items, schema.FLOW_ITEMS), 1.0, 0.3)
    )
    jj = np.concatenate([jj, jj[r]])
    ii = np.concatenate([ii, ii[r]])
    vals = np.concatenate([vals, r_vals])
    rec_ann = np.concatenate([rec_ann, r_ann])
    flag = np.concatenate([flag, np.ones(r.size, dtype=np.int8)])

    # Point-in-time TTM per announcement (asset-major, announcement order).
    order = np.lexsort((flag, jj, rec_ann, ii))
    cols = [items.index(k) for k in ("n_income_attr_p", "revenue", "div_cash", "total_hldr_eqy")]
    ttm = _ttm_kernel(
        ii[order].astype(np.int64),
        jj[order].astype(np.int64),
        np.ascontiguousarray(vals[order][:, cols]),
        Q,
    )
    # Known from the first trading day strictly after the announcement date.
    day = np.searchsorted(
        dates.values.astype("datetime64[D]"), rec_ann[order], side="right"
    ).astype(np.int64)
    ev = np.argsort(day, kind="stable")
    in_window = day[ev] < T

    # Corporate actions on trading days inside the window while the asset trades.
    if c_rows:
        c = np.concatenate(c_rows)
        ex_d = c[:, 0].astype(np.int64).astype("datetime64[D]")
        a_c = c[:, 1].astype(np.int64)
        c_day = np.searchsorted(dates.values.astype("datetime64[D]"), ex_d, side="left").astype(
            np.int64
        )
        has = (c[:, 2] > 0) | (c[:, 3] > 0)
        okc = has & (c_day < T) & (c_day > u.list_pos[a_c]) & (c_day < u.delist_pos[a_c])
        c, c_day, a_c = c[okc], c_day[okc], a_c[okc]
        co = np.argsort(c_day, kind="stable")
        c, c_day, a_c = c[co], c_day[co], a_c[co]
    else:
        c, c_day, a_c = np.zeros((0, 4)), np.zeros(0, np.int64), np.zeros(0, np.int64)

    out_order = np.lexsort((flag, jj, ii, rec_ann))
    records: dict[str, np.ndarray] = {
        "asset": u.codes[ii[out_order]],
        "end_date": end_dates[jj[out_order]].astype("datetime64[ns]"),
        "ann_date": rec_ann[out_order].astype("datetime64[ns]"),
        "update_flag": flag[out_order],
    }
    for k_i, k in enumerate(items):
        records[k] = vals[out_order, k_i]
    return Fundamentals(
        records=records,
        f_day=day[ev][in_window],
        f_asset=ii[order][ev][in_window].astype(np.int64),
        f_vals=np.ascontiguousarray(ttm[ev][in_window]),
        c_day=c_day,
        c_asset=a_c,
        c_cash=np.ascontiguousarray(c[:, 2]),
        c_bonus=np.ascontiguousarray(c[:, 3]),
    )


def _md(year: np.ndarray, month: int, day: int) -> np.ndarray:
    base = (np.asarray(year) - 1970).astype("datetime64[Y]").astype("datetime64[M]")
    return (base + np.timedelta64(month - 1, "M")).astype("datetime64[D]") + np.timedelta64(
        day - 1, "D"
    )
