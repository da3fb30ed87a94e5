"""A-share trading costs: commission with a minimum, stamp duty by date, transfer fee, slippage."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

#: Stamp duty on sells (fraction of traded value) by effective date, as in ASHARE.md:
#: 0.1% until 2023-08-27, 0.05% from 2023-08-28.
STAMP_DUTY_SCHEDULE: pd.Series = pd.Series(
    [0.001, 0.0005],
    index=pd.DatetimeIndex(["1990-01-01", "2023-08-28"], name="date").astype("datetime64[ns]"),
    name="stamp_duty",
)


@dataclass(frozen=True)
class Costs:
    """Trading costs of an A-share back-test.

    Parameters
    ----------
    commission : float, default 0.00025
        Broker commission, fraction of traded value, on buys and sells.
    min_commission : float, default 5.0
        Minimum commission per order, in CNY. Turning it into a fraction needs a portfolio
        size: ``capital``.
    stamp_duty : float or pandas.Series, optional
        Stamp duty on sells only, fraction of traded value. A float applies on every date; a
        Series is a step schedule indexed by effective date. Default
        :data:`STAMP_DUTY_SCHEDULE` (0.1% until 2023-08-27, 0.05% from 2023-08-28). The
        pre-2008-09-19 regimes, when duty was charged on both sides, are not modelled.
    transfer_fee : float, default 0.00001
        Transfer fee, fraction of traded value, on buys and sells.
    slippage_bps : float, default 0.0
        Execution shortfall against the close, in basis points of traded value, on buys and
        sells (charged as a cost, prices are not moved).
    capital : float, default 1e7
        Portfolio value in CNY at the start of the back-test. The portfolio's CNY value on a
        date is ``capital * nav``; an order's commission is
        ``max(commission * value, min_commission)``.

    Notes
    -----
    Orders are one per asset and day, so the minimum commission applies per asset traded.
    Lot sizes (100 shares) are not modelled: positions are fractional.
    """

    commission: float = 0.00025
    min_commission: float = 5.0
    stamp_duty: float | pd.Series = field(default_factory=lambda: STAMP_DUTY_SCHEDULE.copy())
    transfer_fee: float = 0.00001
    slippage_bps: float = 0.0
    capital: float = 1e7

    def __post_init__(self) -> None:
        for name in ("commission", "min_commission", "transfer_fee", "slippage_bps"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"Costs.{name} must be a finite number >= 0, got {value!r}")
        if not np.isfinite(self.capital) or self.capital <= 0:
            raise ValueError(f"Costs.capital must be a positive number, got {self.capital!r}")
        if isinstance(self.stamp_duty, pd.Series):
            if not isinstance(self.stamp_duty.index, pd.DatetimeIndex) or len(self.stamp_duty) == 0:
                raise ValueError("Costs.stamp_duty: a schedule needs a non-empty DatetimeIndex")
            if (self.stamp_duty < 0).any():
                raise ValueError("Costs.stamp_duty: rates must be >= 0")
        elif not np.isfinite(self.stamp_duty) or self.stamp_duty < 0:
            raise ValueError(f"Costs.stamp_duty must be >= 0, got {self.stamp_duty!r}")

    def stamp_duty_rates(self, dates: pd.DatetimeIndex) -> np.ndarray:
        """Stamp duty rate on sells for each date.

        Parameters
        ----------
        dates : pandas.DatetimeIndex
            Trading dates.

        Returns
        -------
        numpy.ndarray
            float64 rates, one per date (0 before the first effective date of a schedule).
        """
        dates = pd.DatetimeIndex(dates)
        if not isinstance(self.stamp_duty, pd.Series):
            return np.full(len(dates), float(self.stamp_duty))
        schedule = self.stamp_duty.sort_index()
        eff = pd.DatetimeIndex(schedule.index).astype("datetime64[ns]")
        pos = eff.searchsorted(dates.astype("datetime64[ns]"), side="right") - 1
        rates = schedule.to_numpy(dtype=np.float64)
        return np.where(pos >= 0, rates[np.clip(pos, 0, None)], 0.0)


#: Costs that are all zero (the default of :func:`quantdask.backtest`).
NO_COSTS = Costs(
    commission=0.0, min_commission=0.0, stamp_duty=0.0, transfer_fee=0.0, slippage_bps=0.0
)
