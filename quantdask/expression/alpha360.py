"""Alpha360: qlib's 360 normalised price and volume lags as formulas (plain data).

:data:`ALPHA360` maps each column name of qlib's ``Alpha360`` handler to its formula, in the
handler's order: for each of close, open, high, low, vwap the value ``i`` days ago over
today's close (``CLOSE59`` ... ``CLOSE0``, ``OPEN59`` ... ``VWAP0``), then the volume ``i``
days ago over today's volume (``VOLUME59`` ... ``VOLUME0``, ``1e-12`` guarding the
division). ``i = 0`` is today's value (``$open/$close``; ``CLOSE0`` is 1 where the close is
known).
"""

from __future__ import annotations

#: Lags of the Alpha360 features, oldest first (qlib's column order).
LAGS: tuple[int, ...] = tuple(range(59, -1, -1))

_PRICES = ("close", "open", "high", "low", "vwap")


def _lag(field: str, i: int) -> str:
    return f"${field}" if i == 0 else f"Ref(${field}, {i})"


#: Column name -> qlib formula, the 360 columns in qlib's order.
ALPHA360: dict[str, str] = {
    **{f"{p.upper()}{i}": f"{_lag(p, i)}/$close" for p in _PRICES for i in LAGS},
    **{f"VOLUME{i}": f"{_lag('volume', i)}/($volume+1e-12)" for i in LAGS},
}

assert len(ALPHA360) == 360

__all__ = ["ALPHA360", "LAGS"]
