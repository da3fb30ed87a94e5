"""A-share daily price-limit rules, one implementation for the synthetic market and ingest.

The rules follow ``ASHARE.md``: +/-10% on the main boards (+/-5% for ST and *ST stocks),
+/-20% on the STAR market and on ChiNext from 2020-08-24 (ChiNext before that: the main-board
rules), +/-30% on the BSE; registration-era listings (STAR, ChiNext from the reform, main
board from 2023-04-10) trade without a limit for their first 5 sessions, BSE listings for
their first session, and earlier main-board / ChiNext IPOs have a day-one cap of +44% / -36%.
There were no daily limits before 1996-12-16 (:func:`limit_regime`).
Limit prices are ``pre_close * (1 +/- limit)`` rounded **half up** to 0.01 CNY, the
exchanges' rounding (``0.45 * 0.9 = 0.405 -> 0.41``), with a guard against binary floating
point (``0.45 * 0.9`` is ``0.40499999...`` in float64).

Plain numpy and numba only (no xarray, no pandas): :mod:`quantdask.io._synth_kernel` calls
:func:`limit_fraction` and :func:`limit_prices` per cell inside its simulation loop, and
:mod:`quantdask.io.ingest` derives ``up_limit`` / ``down_limit`` for a dense block with
:func:`limit_panel`.
"""

from __future__ import annotations

import math

import numba
import numpy as np

#: Board integer codes (the order of :data:`BOARD_NAMES`).
MAIN, STAR, CHINEXT, BSE = 0, 1, 2, 3
BOARD_NAMES: tuple[str, ...] = ("main", "star", "chinext", "bse")
#: ChiNext registration reform: +/-20% from this session on, and 5 limit-free IPO days.
CHINEXT_REFORM = np.datetime64("2020-08-24", "ns")
#: Main-board registration reform: IPOs from this date trade 5 days without a limit.
MAIN_REGISTRATION = np.datetime64("2023-04-10", "ns")
#: The exchanges' daily price limits start on this session (1996-12-16); before it A-shares
#: traded without a daily limit.
LIMITS_START = np.datetime64("1996-12-16", "ns")

# Half-up guard, in cents: values within this of a half cent count as the half cent. Float64
# errors of ``pre * (1 +/- f) * 100`` are ~1e-11 cents at 10,000 CNY; genuine prices never
# sit this close below a half cent (vendor prices have 2-4 decimals).
_HALF_GUARD = 1e-7


def board_codes(boards: np.ndarray) -> np.ndarray:
    """Integer board codes (:data:`MAIN` ... :data:`BSE`) of board names, vectorised.

    Parameters
    ----------
    boards : numpy.ndarray
        Board names of :data:`BOARD_NAMES` (``main``, ``star``, ``chinext``, ``bse``).

    Returns
    -------
    numpy.ndarray
        ``int8`` codes; unknown names raise ``ValueError``.
    """
    names = np.asarray(boards).astype(str)
    out = np.full(names.shape, -1, dtype=np.int8)
    for code, name in enumerate(BOARD_NAMES):
        out[names == name] = code
    if (out < 0).any():
        raise ValueError(f"unknown board name {names[out < 0][0]!r}; expected {BOARD_NAMES}")
    return out


def limit_regime(dates: np.ndarray) -> np.ndarray:
    """Limit regime of each date: 0 no daily limits, 1 limits, 2 limits after the ChiNext reform.

    Parameters
    ----------
    dates : numpy.ndarray
        ``datetime64`` dates.

    Returns
    -------
    numpy.ndarray
        ``int64``: 0 before :data:`LIMITS_START`, 2 from :data:`CHINEXT_REFORM`, else 1.
    """
    d = np.asarray(dates).astype("datetime64[ns]")
    return np.where(d < LIMITS_START, 0, np.where(d >= CHINEXT_REFORM, 2, 1)).astype(np.int64)


def nolimit_days(board: np.ndarray, list_date: np.ndarray) -> np.ndarray:
    """Sessions without a price limit after listing, per asset (0 = old-rule IPO).

    Parameters
    ----------
    board : numpy.ndarray
        Integer board codes (:func:`board_codes`).
    list_date : numpy.ndarray
        ``datetime64`` listing dates (NaT counts as an old listing).

    Returns
    -------
    numpy.ndarray
        ``int64``: 5 for STAR, for ChiNext listed from 2020-08-24 and for the main board
        listed from 2023-04-10; 1 for the BSE; 0 otherwise (those IPOs have the day-one cap of
        +44% / -36%, see :func:`limit_fraction`).
    """
    board = np.asarray(board)
    ld = np.asarray(list_date).astype("datetime64[ns]")
    known = ~np.isnat(ld)
    out = np.zeros(board.shape, dtype=np.int64)
    out[board == STAR] = 5
    out[(board == CHINEXT) & known & (ld >= CHINEXT_REFORM)] = 5
    out[(board == MAIN) & known & (ld >= MAIN_REGISTRATION)] = 5
    out[board == BSE] = 1
    return out


@numba.njit(cache=True, inline="always")
def round_half_up_cents(x):  # pragma: no cover - numba
    """``x`` rounded half up to 0.01 (``x >= 0``), robust to float64 representation error."""
    return math.floor(x * 100.0 + 0.5 + _HALF_GUARD) / 100.0


@numba.njit(cache=True)
def limit_fraction(board, is_st, regime, days_since, nolimit, old_ipo):  # pragma: no cover
    """``(up, down)`` limit fractions of one stock on one day; NaN when no limit applies.

    Parameters
    ----------
    board : int
        Board code (:data:`MAIN`, :data:`STAR`, :data:`CHINEXT`, :data:`BSE`).
    is_st : bool
        ST or *ST on the day.
    regime : int
        :func:`limit_regime` of the day: 0 no limits (before 1996-12-16), 1 limits, 2 limits
        after the ChiNext reform (2020-08-24).
    days_since : int
        Sessions since listing (0 on the listing day).
    nolimit : int
        Limit-free sessions after listing (:func:`nolimit_days`).
    old_ipo : bool
        Old-rule IPO (``nolimit == 0``): day-one cap of +44% / -36%.

    Returns
    -------
    tuple of float
    """
    if regime == 0 or days_since < nolimit:
        return np.nan, np.nan
    if old_ipo and days_since == 0:
        return 0.44, 0.36
    if board == STAR:
        return 0.2, 0.2
    if board == BSE:
        return 0.3, 0.3
    if board == CHINEXT and regime == 2:
        return 0.2, 0.2
    if is_st:
        return 0.05, 0.05
    return 0.1, 0.1


@numba.njit(cache=True)
def limit_prices(pre, up_frac, down_frac):  # pragma: no cover - numba
    """``(up_limit, down_limit)`` from ``pre_close`` and the fractions, rounded half up.

    The down limit is at least 0.01 CNY. NaN fractions (no limit) or a NaN ``pre`` give NaN.
    """
    if not (np.isfinite(pre) and np.isfinite(up_frac)):
        return np.nan, np.nan
    up = round_half_up_cents(pre * (1.0 + up_frac))
    dn = max(round_half_up_cents(pre * (1.0 - down_frac)), 0.01)
    return up, dn


@numba.njit(cache=True)
def limit_panel(
    pre, board, is_st, regime, date_pos, list_pos, nolimit, old_ipo
):  # pragma: no cover
    """Limit prices of a dense ``(date, asset)`` block.

    Parameters
    ----------
    pre : numpy.ndarray
        ``(T, A)`` float64 ``pre_close``; NaN cells get NaN limits.
    board : numpy.ndarray
        ``(A,)`` int board codes.
    is_st : numpy.ndarray
        ``(T, A)`` bool.
    regime : numpy.ndarray
        ``(T,)`` int64 :func:`limit_regime` of the dates.
    date_pos, list_pos : numpy.ndarray
        ``(T,)`` and ``(A,)`` int64 session numbers of the dates and of the listing dates on
        one exchange calendar, so ``date_pos[t] - list_pos[a]`` is the listing age.
    nolimit : numpy.ndarray
        ``(A,)`` int64 (:func:`nolimit_days`).
    old_ipo : numpy.ndarray
        ``(A,)`` bool.

    Returns
    -------
    tuple of numpy.ndarray
        ``(up, down)``, each ``(T, A)`` float64.
    """
    T, A = pre.shape
    up = np.full((T, A), np.nan)
    dn = np.full((T, A), np.nan)
    for t in range(T):
        for a in range(A):
            p = pre[t, a]
            if not np.isfinite(p):
                continue
            uf, df = limit_fraction(
                board[a], is_st[t, a], regime[t], date_pos[t] - list_pos[a], nolimit[a], old_ipo[a]
            )
            up[t, a], dn[t, a] = limit_prices(p, uf, df)
    return up, dn


__all__ = [
    "BOARD_NAMES",
    "BSE",
    "CHINEXT",
    "CHINEXT_REFORM",
    "LIMITS_START",
    "MAIN",
    "MAIN_REGISTRATION",
    "STAR",
    "board_codes",
    "limit_fraction",
    "limit_panel",
    "limit_prices",
    "limit_regime",
    "nolimit_days",
    "round_half_up_cents",
]
