"""Fundamental factors (FACTORS.md sections 2 and 3), registered in the shared registry.

Every factor here is built from point-in-time statement views
(:mod:`quantdask.fundamentals`): on date ``t`` it uses only reports usable on ``t`` (announced
strictly before ``t``, the ``next_trading_day`` convention), restatements from their own
announcement on. Values are lazy ``(date, asset)`` panels on the daily grid, masked to cells
with a traded close (unlisted, delisted and suspended cells are missing).

Conventions shared by all factors
---------------------------------
* Ratios are fractions (0.15, not 15%) unless the docstring says otherwise; a ratio is missing
  when its denominator is not positive (negative equity, zero revenue).
* ``TTM`` = trailing twelve months from cumulative YTD reports (:func:`quantdask.fundamentals.ttm`).
* ``change`` factors compare the latest report period ``P`` with ``P - periods`` (default 4 =
  the same quarter a year earlier), both as known on ``t``; ``growth`` factors divide the
  change by the absolute base.
* All items a factor combines refer to the same report period: the asset's latest report
  known on ``t`` (``anchor="report"``), a missing item in that report makes the factor
  missing. Annual-only items (head count, top-5 customer/supplier shares) use their latest
  reported value instead (``anchor="item"``).
* Statement amounts are in CNY; ``total_mv`` (daily) is in 10k CNY and converted.
* Lookback on the daily panel is 0 for all factors (statements announced before the first
  date are read from the unsliced ``fundamentals`` node); none can see the future.

Inputs the store lacks (patents, ESG scores, economic-policy-uncertainty beta, R&D
amortization share, marketing share, chain exposure) are taken as a user-supplied
``(date, asset)`` ``panel`` parameter by the factors listed in :data:`USER_PANEL_FACTORS`
(``qd.factor("esg_score", panel=esg)``): the panel must be point in time already (its value
on ``t`` known on ``t``); it is reindexed to the daily grid.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from quantdask.factors.registry import register_factor
from quantdask.fundamentals.pit import MODE_TTM, MODE_VALUE, views_panel

#: Dickinson (2011) life-cycle stage codes.
LIFECYCLE_STAGES: dict[int, str] = {
    1: "introduction",
    2: "growth",
    3: "mature",
    4: "shake-out",
    5: "decline",
}

#: Stage code by the signs (CFO >= 0, CFI >= 0, CFF >= 0); zero counts as positive.
_DICKINSON: dict[tuple[bool, bool, bool], int] = {
    (False, False, True): 1,  # - - +  introduction
    (True, False, True): 2,  # + - +  growth
    (True, False, False): 3,  # + - -  mature
    (False, False, False): 4,  # - - -  shake-out
    (True, True, True): 4,  # + + +  shake-out
    (True, True, False): 4,  # + + -  shake-out
    (False, True, True): 5,  # - + +  decline
    (False, True, False): 5,  # - + -  decline
}


# ----------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------
def _fund(*items: str) -> tuple[str, ...]:
    """Declared inputs: the traded mask, the fundamentals node and the statement items.

    An item with a ``/`` is a path as it is (``"daily/total_mv"``); optional items (filled
    with 0 when missing) are not declared.
    """
    paths = [i if "/" in i else f"fundamentals/{i}" for i in items]
    return ("daily/close", "fundamentals", *paths)


def _by_source(daily_field: str, item: str):
    """Inputs of a factor with ``source="daily"`` (vendor field) or ``"statements"``."""

    def inputs(*, source: str = "daily", **_: object) -> tuple[str, ...]:
        if source == "statements":
            return _fund(item, "daily/total_mv")
        return ("daily/close", f"daily/{daily_field}")

    return inputs


def _traded(market: xr.DataTree) -> xr.DataArray:
    return market["daily"]["close"].notnull()


def _mask(market: xr.DataTree, x: xr.DataArray, name: str) -> xr.DataArray:
    return x.where(_traded(market)).rename(name)


def _views(
    market: xr.DataTree, item: str, views: list[tuple[int, int]], anchor: str = "report"
) -> list[xr.DataArray]:
    out, _ = views_panel(market, item, views=views, anchor=anchor)  # type: ignore[arg-type]
    return out


def _val(market: xr.DataTree, item: str, lag: int = 0, anchor: str = "report") -> xr.DataArray:
    return _views(market, item, [(MODE_VALUE, lag)], anchor)[0]


def _ttm(market: xr.DataTree, item: str, lag: int = 0) -> xr.DataArray:
    return _views(market, item, [(MODE_TTM, lag)])[0]


def _div(num: xr.DataArray, den: xr.DataArray) -> xr.DataArray:
    """``num / den`` where ``den > 0``, else NaN."""
    return num / den.where(den > 0)


def _growth(now: xr.DataArray, before: xr.DataArray) -> xr.DataArray:
    base = abs(before)
    return (now - before) / base.where(base > 0)


def _check_periods(periods: int) -> int:
    if isinstance(periods, bool) or not isinstance(periods, int | np.integer) or periods < 1:
        raise ValueError(f"periods must be a positive integer, got {periods!r}")
    return int(periods)


def _mcap_cny(market: xr.DataTree) -> xr.DataArray:
    return market["daily"]["total_mv"] * 1e4


def group_sum(x: xr.DataArray, group: xr.DataArray) -> xr.DataArray:
    """Sum of ``x`` over the assets sharing ``group`` on each date, broadcast back to assets.

    Parameters
    ----------
    x : xarray.DataArray
        ``(date, asset)`` values; NaN ignored.
    group : xarray.DataArray
        ``(date, asset)`` integer group codes (0 or negative = no group: result NaN).

    Returns
    -------
    xarray.DataArray
        ``(date, asset)``: the group total for each asset's group (NaN outside any group or
        when the group has no valid value).

    Notes
    -----
    Cross-sectional: needs all assets of a date in one chunk (rechunked here). Lookback 0.
    Vectorised with one ``bincount`` per block, no loop over dates or groups.
    """
    x, group = xr.align(x, group, join="left")
    x = x.chunk({"asset": -1}) if x.chunks else x
    group = group.chunk({"asset": -1}) if group.chunks else group
    return xr.apply_ufunc(
        _group_sum_np,
        x,
        group,
        input_core_dims=[["asset"], ["asset"]],
        output_core_dims=[["asset"]],
        dask="parallelized",
        output_dtypes=[np.float64],
    ).transpose(*x.dims)


def _group_sum_np(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    g = np.asarray(g)
    shape = x.shape
    x2 = x.reshape(-1, shape[-1])
    g2 = np.nan_to_num(g.reshape(-1, shape[-1]).astype(np.float64), nan=0).astype(np.int64)
    valid = (g2 > 0) & np.isfinite(x2)
    codes, inv = np.unique(np.where(g2 > 0, g2, 0), return_inverse=True)
    inv = inv.reshape(g2.shape)
    n_codes = codes.size
    rows = np.arange(x2.shape[0])[:, None]
    key = rows * n_codes + inv
    sums = np.bincount(key[valid], weights=x2[valid], minlength=x2.shape[0] * n_codes)
    counts = np.bincount(key[valid], minlength=x2.shape[0] * n_codes)
    tot = np.where(counts > 0, sums, np.nan)[key]
    tot = np.where(g2 > 0, tot, np.nan)
    return tot.reshape(shape)


# ----------------------------------------------------------------------------------------
# valuation and quality
# ----------------------------------------------------------------------------------------
@register_factor("roe_ttm", inputs=_fund("n_income_attr_p", "total_hldr_eqy"))
def roe_ttm(market: xr.DataTree) -> xr.DataArray:
    """Return on equity, TTM: TTM net profit attributable to parent / latest equity.

    Notes
    -----
    ``n_income_attr_p`` TTM over the latest ``total_hldr_eqy`` (missing when equity <= 0).
    Lookback 0 on the daily panel; point in time, no look-ahead.
    """
    return _mask(
        market, _div(_ttm(market, "n_income_attr_p"), _val(market, "total_hldr_eqy")), "roe_ttm"
    )


@register_factor("dividend_yield", inputs=_by_source("dv_ttm", "div_cash"))
def dividend_yield(market: xr.DataTree, *, source: str = "daily") -> xr.DataArray:
    """Dividend yield TTM, in %.

    Parameters
    ----------
    source : {"daily", "statements"}, default "daily"
        ``"daily"``: the vendor's ``dv_ttm`` field. ``"statements"``: TTM cash dividends
        (``div_cash``, point in time) / total market value * 100.

    Notes
    -----
    Lookback 0; no look-ahead.
    """
    if source == "daily":
        out = market["daily"]["dv_ttm"]
    elif source == "statements":
        out = _div(_ttm(market, "div_cash"), _mcap_cny(market)) * 100.0
    else:
        raise ValueError(f"source must be 'daily' or 'statements', got {source!r}")
    return _mask(market, out, "dividend_yield")


@register_factor("debt_to_asset", inputs=_fund("total_liab", "total_assets"))
def debt_to_asset(market: xr.DataTree) -> xr.DataArray:
    """Debt-to-asset ratio: latest total liabilities / total assets.

    Notes
    -----
    Lookback 0; point in time, no look-ahead.
    """
    out = _div(_val(market, "total_liab"), _val(market, "total_assets"))
    return _mask(market, out, "debt_to_asset")


@register_factor("ocf_to_revenue", inputs=_fund("n_cashflow_act", "revenue"))
def ocf_to_revenue(market: xr.DataTree) -> xr.DataArray:
    """Operating cash flow / revenue, both TTM.

    Notes
    -----
    ``n_cashflow_act`` TTM / ``revenue`` TTM. Lookback 0; no look-ahead.
    """
    out = _div(_ttm(market, "n_cashflow_act"), _ttm(market, "revenue"))
    return _mask(market, out, "ocf_to_revenue")


@register_factor("labour_productivity", inputs=_fund("revenue", "employees"))
def labour_productivity(market: xr.DataTree) -> xr.DataArray:
    """Revenue per employee: TTM revenue (CNY) / latest reported head count.

    Notes
    -----
    Head counts are usually reported only in annual reports; the latest reported one is used.
    Lookback 0; no look-ahead.
    """
    out = _div(_ttm(market, "revenue"), _val(market, "employees", anchor="item"))
    return _mask(market, out, "labour_productivity")


def _roic(market: xr.DataTree, lag: int, tax_rate: float) -> xr.DataArray:
    nopat = _ttm(market, "ebit", lag) * (1.0 - tax_rate)
    equity = _val(market, "total_hldr_eqy", lag)
    liab = _val(market, "total_liab", lag)
    adv = _val(market, "adv_receipts", lag).fillna(0.0)
    contract = _val(market, "contract_liab", lag).fillna(0.0)
    invested = equity + liab - adv - contract
    return _div(nopat, invested)


def _check_tax(tax_rate: float) -> float:
    if not isinstance(tax_rate, int | float) or not 0 <= tax_rate < 1:
        raise ValueError(f"tax_rate must be a number in [0, 1), got {tax_rate!r}")
    return float(tax_rate)


@register_factor("roic", inputs=_fund("ebit", "total_hldr_eqy", "total_liab"))
def roic(market: xr.DataTree, *, tax_rate: float = 0.25) -> xr.DataArray:
    """Return on invested capital: EBIT TTM * (1 - tax_rate) / invested capital.

    Parameters
    ----------
    tax_rate : float, default 0.25
        Flat tax rate for NOPAT (the statutory A-share rate).

    Notes
    -----
    Invested capital = equity + liabilities - advance receipts - contract liabilities (the
    store has no split of interest-bearing debt, so operating prepayments are removed and the
    remaining liabilities are treated as financing). Lookback 0; no look-ahead.
    """
    return _mask(market, _roic(market, 0, _check_tax(tax_rate)), "roic")


@register_factor("roic_change", inputs=_fund("ebit", "total_hldr_eqy", "total_liab"))
def roic_change(market: xr.DataTree, *, periods: int = 4, tax_rate: float = 0.25) -> xr.DataArray:
    """Change of ROIC between the latest report and ``periods`` quarters earlier.

    Notes
    -----
    ``roic(P) - roic(P - periods)``, both as known on ``t``. Lookback 0; no look-ahead.
    """
    p, tax = _check_periods(periods), _check_tax(tax_rate)
    return _mask(market, _roic(market, 0, tax) - _roic(market, p, tax), "roic_change")


def _gross_margin(market: xr.DataTree, lag: int) -> xr.DataArray:
    rev = _ttm(market, "revenue", lag)
    return _div(rev - _ttm(market, "oper_cost", lag), rev)


@register_factor("gross_margin", inputs=_fund("revenue", "oper_cost"))
def gross_margin(market: xr.DataTree) -> xr.DataArray:
    """Gross margin TTM: (revenue - operating cost) / revenue, both TTM.

    Notes
    -----
    Lookback 0; no look-ahead.
    """
    return _mask(market, _gross_margin(market, 0), "gross_margin")


@register_factor("gross_margin_change", inputs=_fund("revenue", "oper_cost"))
def gross_margin_change(market: xr.DataTree, *, periods: int = 4) -> xr.DataArray:
    """Change of TTM gross margin versus ``periods`` quarters earlier (default a year).

    Notes
    -----
    Lookback 0; no look-ahead.
    """
    p = _check_periods(periods)
    out = _gross_margin(market, 0) - _gross_margin(market, p)
    return _mask(market, out, "gross_margin_change")


@register_factor("ebit_ttm_growth", inputs=_fund("ebit"))
def ebit_ttm_growth(market: xr.DataTree) -> xr.DataArray:
    """Year-on-year growth of EBIT TTM: (EBIT_TTM(P) - EBIT_TTM(P-4)) / |EBIT_TTM(P-4)|.

    Notes
    -----
    Lookback 0; no look-ahead.
    """
    now, before = _views(market, "ebit", [(MODE_TTM, 0), (MODE_TTM, 4)])
    return _mask(market, _growth(now, before), "ebit_ttm_growth")


@register_factor("net_profit_growth", inputs=_fund("n_income_attr_p"))
def net_profit_growth(market: xr.DataTree, *, kind: str = "ttm") -> xr.DataArray:
    """Year-on-year growth of net profit attributable to the parent.

    Parameters
    ----------
    kind : {"ttm", "value"}, default "ttm"
        Compare TTM figures, or cumulative YTD figures of the same quarter a year apart.

    Notes
    -----
    Growth over the absolute base (missing when the base is 0). Lookback 0; no look-ahead.
    """
    if kind not in ("ttm", "value"):
        raise ValueError(f"kind must be 'ttm' or 'value', got {kind!r}")
    mode = MODE_TTM if kind == "ttm" else MODE_VALUE
    now, before = _views(market, "n_income_attr_p", [(mode, 0), (mode, 4)])
    return _mask(market, _growth(now, before), "net_profit_growth")


def _rd_to_revenue(market: xr.DataTree) -> xr.DataArray:
    return _div(_ttm(market, "rd_exp"), _ttm(market, "revenue"))


@register_factor("rd_to_revenue", inputs=_fund("rd_exp", "revenue"))
def rd_to_revenue(market: xr.DataTree) -> xr.DataArray:
    """R&D expense / revenue, both TTM.

    Notes
    -----
    Same definition as ``rd_intensity`` (kept under both names used by the research).
    Lookback 0; no look-ahead.
    """
    return _mask(market, _rd_to_revenue(market), "rd_to_revenue")


@register_factor("rd_intensity", inputs=_fund("rd_exp", "revenue"))
def rd_intensity(market: xr.DataTree) -> xr.DataArray:
    """R&D intensity: R&D expense TTM / revenue TTM (industry-chain study factor).

    Notes
    -----
    Lookback 0; no look-ahead.
    """
    return _mask(market, _rd_to_revenue(market), "rd_intensity")


@register_factor("rd_staff_share", inputs=_fund("rd_staff", "employees"))
def rd_staff_share(market: xr.DataTree) -> xr.DataArray:
    """R&D staff / employees (latest reported head counts, usually annual).

    Notes
    -----
    Lookback 0; no look-ahead.
    """
    out = _div(_val(market, "rd_staff", anchor="item"), _val(market, "employees", anchor="item"))
    return _mask(market, out, "rd_staff_share")


@register_factor("rd_to_mcap", inputs=_fund("rd_exp", "daily/total_mv"))
def rd_to_mcap(market: xr.DataTree) -> xr.DataArray:
    """R&D expense TTM / total market value (both in CNY).

    Notes
    -----
    Market value is the same-day ``total_mv``. Lookback 0; no look-ahead.
    """
    return _mask(market, _div(_ttm(market, "rd_exp"), _mcap_cny(market)), "rd_to_mcap")


def _ratio_change(market: xr.DataTree, num: str, den: str, periods: int) -> xr.DataArray:
    n0, n1 = _views(market, num, [(MODE_TTM, 0), (MODE_TTM, periods)])
    d0, d1 = _views(market, den, [(MODE_TTM, 0), (MODE_TTM, periods)])
    return _div(n0, d0) - _div(n1, d1)


@register_factor("admin_exp_ratio_change", inputs=_fund("admin_exp", "revenue"))
def admin_exp_ratio_change(market: xr.DataTree, *, periods: int = 4) -> xr.DataArray:
    """Change of the management (administrative) expense ratio, admin_exp TTM / revenue TTM.

    Notes
    -----
    ``ratio(P) - ratio(P - periods)``. Lookback 0; no look-ahead.
    """
    out = _ratio_change(market, "admin_exp", "revenue", _check_periods(periods))
    return _mask(market, out, "admin_exp_ratio_change")


def _receivables_turnover(market: xr.DataTree, lag: int) -> xr.DataArray:
    return _div(_ttm(market, "revenue", lag), _val(market, "accounts_receiv", lag))


@register_factor("receivables_turnover", inputs=_fund("revenue", "accounts_receiv"))
def receivables_turnover(market: xr.DataTree) -> xr.DataArray:
    """Accounts-receivable turnover: revenue TTM / latest accounts receivable.

    Notes
    -----
    Lookback 0; no look-ahead.
    """
    return _mask(market, _receivables_turnover(market, 0), "receivables_turnover")


@register_factor("receivables_turnover_change", inputs=_fund("revenue", "accounts_receiv"))
def receivables_turnover_change(market: xr.DataTree, *, periods: int = 4) -> xr.DataArray:
    """Change of receivables turnover versus ``periods`` quarters earlier.

    Notes
    -----
    Lookback 0; no look-ahead.
    """
    p = _check_periods(periods)
    out = _receivables_turnover(market, 0) - _receivables_turnover(market, p)
    return _mask(market, out, "receivables_turnover_change")


@register_factor("ps_ttm", inputs=_by_source("ps_ttm", "revenue"))
def ps_ttm(market: xr.DataTree, *, source: str = "daily") -> xr.DataArray:
    """Price-to-sales TTM.

    Parameters
    ----------
    source : {"daily", "statements"}, default "daily"
        The vendor's ``ps_ttm`` field, or total market value / point-in-time revenue TTM.

    Notes
    -----
    Lookback 0; no look-ahead.
    """
    if source == "daily":
        out = market["daily"]["ps_ttm"]
    elif source == "statements":
        out = _div(_mcap_cny(market), _ttm(market, "revenue"))
    else:
        raise ValueError(f"source must be 'daily' or 'statements', got {source!r}")
    return _mask(market, out, "ps_ttm")


def cs_residual(y: xr.DataArray, x: xr.DataArray) -> xr.DataArray:
    """Residual of the per-date cross-sectional OLS regression ``y = a + b x + e``.

    Parameters
    ----------
    y, x : xarray.DataArray
        ``(date, asset)``; cells where either is missing are left out (and get NaN).

    Returns
    -------
    xarray.DataArray
        ``(date, asset)`` residuals ``e``; NaN on dates with fewer than 3 valid pairs or no
        variation in ``x``.

    Notes
    -----
    Cross-sectional, lookback 0; lazy (reductions over ``asset`` per date).
    """
    valid = y.notnull() & x.notnull()
    y, x = y.where(valid), x.where(valid)
    n = valid.sum("asset")
    xm = x - x.mean("asset")
    ym = y - y.mean("asset")
    sxx = (xm * xm).sum("asset")
    beta = (xm * ym).sum("asset") / sxx.where(sxx > 0)
    return (ym - beta * xm).where(n >= 3)


@register_factor("pb_roe_residual", inputs=_fund("daily/pb", "n_income_attr_p", "total_hldr_eqy"))
def pb_roe_residual(market: xr.DataTree) -> xr.DataArray:
    """PB-ROE residual: residual of the per-date regression of log(P/B) on ROE TTM.

    Notes
    -----
    Stocks with P/B <= 0 are left out. A negative residual means cheap for its profitability.
    Cross-sectional over all traded assets of a date; lookback 0; no look-ahead.
    """
    pb = market["daily"]["pb"]
    logpb = np.log(pb.where(pb > 0))
    roe = _div(_ttm(market, "n_income_attr_p"), _val(market, "total_hldr_eqy"))
    traded = _traded(market)
    return _mask(market, cs_residual(logpb.where(traded), roe.where(traded)), "pb_roe_residual")


@register_factor("customer_concentration", inputs=_fund("top5_customer_share"))
def customer_concentration(market: xr.DataTree) -> xr.DataArray:
    """Top-5 customers' share of revenue (latest reported, as in the store: a fraction).

    Notes
    -----
    Usually annual-report data; the latest reported value is used. Lookback 0; no look-ahead.
    """
    return _mask(
        market, _val(market, "top5_customer_share", anchor="item"), "customer_concentration"
    )


@register_factor("supplier_concentration", inputs=_fund("top5_supplier_share"))
def supplier_concentration(market: xr.DataTree) -> xr.DataArray:
    """Top-5 suppliers' share of purchases (latest reported).

    Notes
    -----
    Lookback 0; no look-ahead.
    """
    return _mask(
        market, _val(market, "top5_supplier_share", anchor="item"), "supplier_concentration"
    )


@register_factor("market_share", inputs=_fund("revenue", "daily/industry"))
def market_share(market: xr.DataTree) -> xr.DataArray:
    """Revenue share within the industry: revenue TTM / total revenue TTM of the industry.

    Notes
    -----
    Industry = Shenwan level-1 code valid on the date (``daily.industry``); the total runs over
    traded assets of that industry with a known revenue TTM. Cross-sectional; lookback 0; no
    look-ahead.
    """
    rev = _ttm(market, "revenue").where(_traded(market))
    rev = rev.where(rev > 0)
    total = group_sum(rev, market["daily"]["industry"])
    return _mask(market, rev / total, "market_share")


@register_factor("adv_receipts_growth", inputs=_fund())
def adv_receipts_growth(market: xr.DataTree) -> xr.DataArray:
    """YoY growth of advance receipts + contract liabilities.

    Notes
    -----
    Contract liabilities replaced advance receipts under the 2018 revenue standard, so the sum
    is compared (a missing component counts as 0; both missing -> missing). Lookback 0; no
    look-ahead.
    """
    a0, a4 = _views(market, "adv_receipts", [(MODE_VALUE, 0), (MODE_VALUE, 4)])
    c0, c4 = _views(market, "contract_liab", [(MODE_VALUE, 0), (MODE_VALUE, 4)])
    now = a0.fillna(0) + c0.fillna(0)
    before = a4.fillna(0) + c4.fillna(0)
    now = now.where(a0.notnull() | c0.notnull())
    before = before.where(a4.notnull() | c4.notnull())
    return _mask(market, _growth(now, before), "adv_receipts_growth")


def _tangible_to_liab(market: xr.DataTree, lag: int) -> xr.DataArray:
    tangible = (
        _val(market, "total_assets", lag)
        - _val(market, "intan_assets", lag).fillna(0)
        - _val(market, "goodwill", lag).fillna(0)
    )
    return _div(tangible, _val(market, "total_liab", lag))


@register_factor("tangible_to_liab_change", inputs=_fund("total_assets", "total_liab"))
def tangible_to_liab_change(market: xr.DataTree, *, periods: int = 4) -> xr.DataArray:
    """Change of tangible assets / total liabilities versus ``periods`` quarters earlier.

    Notes
    -----
    Tangible assets = total assets - intangible assets - goodwill. Lookback 0; no look-ahead.
    """
    p = _check_periods(periods)
    out = _tangible_to_liab(market, 0) - _tangible_to_liab(market, p)
    return _mask(market, out, "tangible_to_liab_change")


def _item_change(market: xr.DataTree, item: str, periods: int, name: str) -> xr.DataArray:
    now, before = _views(market, item, [(MODE_VALUE, 0), (MODE_VALUE, _check_periods(periods))])
    return _mask(market, now - before, name)


@register_factor("capital_adequacy_change", inputs=_fund("capital_adequacy"))
def capital_adequacy_change(market: xr.DataTree, *, periods: int = 4) -> xr.DataArray:
    """Change of the capital adequacy ratio (banks) versus ``periods`` quarters earlier.

    Notes
    -----
    Missing for companies that do not report it. Lookback 0; no look-ahead.
    """
    return _item_change(market, "capital_adequacy", periods, "capital_adequacy_change")


@register_factor("provision_coverage_change", inputs=_fund("provision_coverage"))
def provision_coverage_change(market: xr.DataTree, *, periods: int = 4) -> xr.DataArray:
    """Change of the provision coverage ratio (banks) versus ``periods`` quarters earlier.

    Notes
    -----
    Missing for companies that do not report it. Lookback 0; no look-ahead.
    """
    return _item_change(market, "provision_coverage", periods, "provision_coverage_change")


@register_factor("capacity_expansion", inputs=_fund("fix_assets"))
def capacity_expansion(market: xr.DataTree, *, periods: int = 4) -> xr.DataArray:
    """Capacity expansion: growth of fixed assets + construction in progress over a year.

    Parameters
    ----------
    periods : int, default 4
        Quarters between the compared balance sheets (4 = the last year).

    Notes
    -----
    ``(K(P) - K(P - periods)) / |K(P - periods)|`` with ``K = fix_assets + cip`` (missing
    ``cip`` counts as 0), both point-in-time balance sheets. Lookback 0; no look-ahead.
    """
    p = _check_periods(periods)
    f0, f1 = _views(market, "fix_assets", [(MODE_VALUE, 0), (MODE_VALUE, p)])
    c0, c1 = _views(market, "cip", [(MODE_VALUE, 0), (MODE_VALUE, p)])
    return _mask(market, _growth(f0 + c0.fillna(0), f1 + c1.fillna(0)), "capacity_expansion")


def lifecycle_codes(cfo: np.ndarray, cfi: np.ndarray, cff: np.ndarray) -> np.ndarray:
    """Dickinson (2011) stage codes from cash-flow signs, on plain arrays.

    Parameters
    ----------
    cfo, cfi, cff : numpy.ndarray
        Operating, investing and financing cash flows (any matching shape).

    Returns
    -------
    numpy.ndarray
        float64 codes (see :data:`LIFECYCLE_STAGES`): 1 introduction (- - +), 2 growth
        (+ - +), 3 mature (+ - -), 4 shake-out (- - -, + + +, + + -), 5 decline (- + +,
        - + -); NaN where any input is missing. Zero counts as positive.
    """
    cfo, cfi, cff = (np.asarray(a, dtype=np.float64) for a in (cfo, cfi, cff))
    table = np.empty(8)
    for (o, i, f), code in _DICKINSON.items():
        table[int(o) * 4 + int(i) * 2 + int(f)] = code
    key = (cfo >= 0).astype(np.int64) * 4 + (cfi >= 0) * 2 + (cff >= 0)
    out = table[key]
    return np.where(np.isfinite(cfo) & np.isfinite(cfi) & np.isfinite(cff), out, np.nan)


@register_factor(
    "lifecycle", inputs=_fund("n_cashflow_act", "n_cashflow_inv_act", "n_cash_flows_fnc_act")
)
def lifecycle(market: xr.DataTree) -> xr.DataArray:
    """Company life-cycle stage (Dickinson 2011) from the signs of TTM cash flows.

    Notes
    -----
    Codes (float, NaN when any cash flow is unknown), the table of FACTORS.md section 3:

    ====  =====  =====  =====  ============
    code  CFO    CFI    CFF    stage
    ====  =====  =====  =====  ============
    1     neg    neg    pos    introduction
    2     pos    neg    pos    growth
    3     pos    neg    neg    mature
    4     neg    neg    neg    shake-out
    4     pos    pos    pos    shake-out
    4     pos    pos    neg    shake-out
    5     neg    pos    pos    decline
    5     neg    pos    neg    decline
    ====  =====  =====  =====  ============

    CFO, CFI, CFF are the TTM ``n_cashflow_act``, ``n_cashflow_inv_act`` and
    ``n_cash_flows_fnc_act`` of the latest report known on the date; a zero cash flow counts
    as positive. Lookback 0; no look-ahead. :data:`LIFECYCLE_STAGES` maps codes to names.
    """
    cfo = _ttm(market, "n_cashflow_act")
    cfi = _ttm(market, "n_cashflow_inv_act")
    cff = _ttm(market, "n_cash_flows_fnc_act")
    out = xr.apply_ufunc(
        lifecycle_codes, cfo, cfi, cff, dask="parallelized", output_dtypes=[np.float64]
    )
    return _mask(market, out, "lifecycle")


# ----------------------------------------------------------------------------------------
# user-supplied inputs
# ----------------------------------------------------------------------------------------
def user_panel(market: xr.DataTree, panel: xr.DataArray, name: str) -> xr.DataArray:
    """Check a user-supplied ``(date, asset)`` panel and put it on the market's daily grid.

    Parameters
    ----------
    market : xarray.DataTree
        Market tree; its ``daily`` dates and assets define the grid.
    panel : xarray.DataArray
        ``(date, asset)`` values, point in time (value on ``t`` known on ``t``).
    name : str
        Factor name for error messages and the result.

    Returns
    -------
    xarray.DataArray
        ``panel`` reindexed to the daily grid (missing where the panel has no value).
    """
    if not isinstance(panel, xr.DataArray):
        raise TypeError(
            f"factor {name!r} needs a user-supplied (date, asset) xarray.DataArray panel, "
            f"got {type(panel).__name__}"
        )
    if set(panel.dims) != {"date", "asset"}:
        raise ValueError(f"factor {name!r}: panel dims must be ('date', 'asset'), got {panel.dims}")
    daily = market["daily"]
    out = panel.transpose("date", "asset").reindex(date=daily["date"], asset=daily["asset"])
    return out.astype(np.float64).rename(name)


def _register_user_panel(name: str, summary: str, absolute: bool = False) -> None:
    def func(market: xr.DataTree, *, panel: xr.DataArray) -> xr.DataArray:
        out = user_panel(market, panel, name)
        return _mask(market, abs(out) if absolute else out, name)

    func.__name__ = name
    doc = (
        f"{summary}\n\nParameters\n----------\npanel : xarray.DataArray\n"
        "    User-supplied (date, asset) panel, point in time (the store has no such input).\n\n"
        "Notes\n-----\nReindexed to the daily grid"
        + (", absolute value taken" if absolute else "")
        + ". Lookback 0; look-ahead only if the panel itself has it."
    )
    register_factor(name, doc=doc, inputs=("daily/close",))(func)


_register_user_panel("patents", "Patents held (user-supplied panel).")
_register_user_panel("esg_score", "ESG score (user-supplied panel).")
_register_user_panel(
    "policy_uncertainty_beta",
    "Absolute beta of returns to economic policy uncertainty (user-supplied panel).",
    absolute=True,
)
_register_user_panel(
    "rd_amortization_change", "Change of the R&D amortization share (user-supplied panel)."
)
_register_user_panel("direct_rd_share_change", "Change of the direct R&D share (user panel).")
_register_user_panel("avg_distance", "The technology model's 'average distance' (user panel).")
_register_user_panel("marketing_share", "Marketing expense share (user-supplied panel).")
_register_user_panel("chain_exposure", "Business exposure to an industry chain (user panel).")

#: Factors that need a user-supplied ``panel`` parameter.
USER_PANEL_FACTORS: tuple[str, ...] = (
    "patents",
    "esg_score",
    "policy_uncertainty_beta",
    "rd_amortization_change",
    "direct_rd_share_change",
    "avg_distance",
    "marketing_share",
    "chain_exposure",
)

__all__ = [
    "LIFECYCLE_STAGES",
    "USER_PANEL_FACTORS",
    "cs_residual",
    "group_sum",
    "lifecycle_codes",
    "user_panel",
]
