"""A one-screen summary of a market store: universe, boards, trading frictions, nodes."""

from __future__ import annotations

from dataclasses import dataclass, field

import dask
import numpy as np
import pandas as pd
import xarray as xr

from quantdask.io.store import MarketLike, as_market


@dataclass(frozen=True)
class MarketSummary:
    """Headline figures of a market store (see :func:`summarize_market`).

    Attributes
    ----------
    n_dates, n_assets : int
        Trading dates and assets ever listed.
    start, end : pandas.Timestamp
        First and last trading date.
    listed_by_year : pandas.Series
        Listed assets on each year's last trading date.
    boards : pandas.Series
        Assets per board.
    stock_days : int
        Listed (date, asset) cells.
    limit_up_share, limit_down_share, suspended_share, st_share : float
        Share of listed stock-days closing at the up / down limit, suspended, or ST.
    delisted : int
        Assets delisted within the history.
    nodes : dict
        Node name -> its dimensions.
    """

    n_dates: int
    n_assets: int
    start: pd.Timestamp
    end: pd.Timestamp
    listed_by_year: pd.Series
    boards: pd.Series
    stock_days: int
    limit_up_share: float
    limit_down_share: float
    suspended_share: float
    st_share: float
    delisted: int
    nodes: dict[str, dict[str, int]] = field(default_factory=dict)

    def __str__(self) -> str:
        lines = [
            f"trading dates  {self.n_dates:>8,}  ({self.start:%Y-%m-%d} .. {self.end:%Y-%m-%d})",
            f"assets         {self.n_assets:>8,}  ever listed, {self.delisted:,} delisted",
            f"stock-days     {self.stock_days:>8,}  listed (date, asset) cells",
            f"limit up       {self.limit_up_share:>8.2%}  of stock-days close at the up limit",
            f"limit down     {self.limit_down_share:>8.2%}  close at the down limit",
            f"suspended      {self.suspended_share:>8.2%}  of stock-days",
            f"ST             {self.st_share:>8.2%}  of stock-days",
            "boards         " + ", ".join(f"{k} {v:,}" for k, v in self.boards.items()),
            "listed at year end "
            + ", ".join(f"{y}: {n:,}" for y, n in self.listed_by_year.items()),
            "nodes          "
            + "; ".join(
                f"{name} ({', '.join(f'{d}={n:,}' for d, n in dims.items())})"
                for name, dims in self.nodes.items()
            ),
        ]
        return "\n".join(lines)


def summarize_market(market: MarketLike) -> MarketSummary:
    """Summarize a market store in one pass over the daily panel.

    Parameters
    ----------
    market : str, os.PathLike or xarray.DataTree
        Store path or the tree returned by :func:`quantdask.open_market`.

    Returns
    -------
    MarketSummary
        Printable headline figures.

    Notes
    -----
    A reduction point: reads ``close``, ``up_limit``, ``down_limit``, ``suspended`` and
    ``is_st`` once, as one dask computation.
    """
    tree = as_market(market)
    daily = tree["daily"].to_dataset()
    close = daily["close"]
    traded = close.notnull()
    listed = traded | daily["suspended"]
    tol = 0.005
    at_up = traded & (close >= daily["up_limit"] - tol)
    at_down = traded & (close <= daily["down_limit"] + tol)
    year_ends = (
        pd.Series(daily["date"].values).groupby(pd.DatetimeIndex(daily["date"].values).year).max()
    )
    listed_at_year_end = listed.sel(date=year_ends.values).sum("asset")
    counts = xr.Dataset(
        {
            "listed": listed.sum(),
            "up": at_up.sum(),
            "down": at_down.sum(),
            "suspended": daily["suspended"].sum(),
            "st": (daily["is_st"] & listed).sum(),
        }
    )
    counts, listed_at_year_end = dask.compute(counts, listed_at_year_end)
    n_listed = max(int(counts["listed"]), 1)
    delist = pd.to_datetime(np.asarray(daily["delist_date"].values))
    boards = pd.Series(np.asarray(daily["board"].values)).value_counts().sort_index()
    nodes = {
        name: {str(d): int(n) for d, n in node.sizes.items()}
        for name, node in tree.children.items()
    }
    return MarketSummary(
        n_dates=daily.sizes["date"],
        n_assets=daily.sizes["asset"],
        start=pd.Timestamp(daily["date"].values[0]),
        end=pd.Timestamp(daily["date"].values[-1]),
        listed_by_year=pd.Series(
            np.asarray(listed_at_year_end.values, dtype=int), index=year_ends.index
        ),
        boards=boards,
        stock_days=int(counts["listed"]),
        limit_up_share=int(counts["up"]) / n_listed,
        limit_down_share=int(counts["down"]) / n_listed,
        suspended_share=int(counts["suspended"]) / n_listed,
        st_share=int(counts["st"]) / n_listed,
        delisted=int(delist.notna().sum()),
        nodes=nodes,
    )
