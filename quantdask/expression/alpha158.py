"""Alpha158: qlib's 158 price/volume features as formulas (plain data).

:data:`ALPHA158` maps each column name of qlib's ``Alpha158`` handler (``KMID`` ...
``VSUMD60``, in the handler's column order) to its formula in qlib's syntax, as the public
Alpha158 definition reads: 9 candlestick ("kbar") features, today's open / high / low / vwap
over the close, and 29 rolling features over windows of 5, 10, 20, 30 and 60 days.
``1e-12`` in a denominator is the definition's guard against division by zero. ``$x / Ref(``
is spaced because the tokenizer reads ``$close/Ref`` as a ``node/field`` input path.

The inputs are qlib's (``$close`` adjusted, ``$volume`` in shares / factor): build factors
with :func:`quantdask.factor_set` (``semantics="qlib"`` to reproduce qlib's numbers,
``"strict"`` for quantdask's windows on the same inputs).
"""

from __future__ import annotations

#: Rolling windows of the Alpha158 rolling features.
WINDOWS: tuple[int, ...] = (5, 10, 20, 30, 60)

_KBAR: dict[str, str] = {
    "KMID": "($close-$open)/$open",
    "KLEN": "($high-$low)/$open",
    "KMID2": "($close-$open)/($high-$low+1e-12)",
    "KUP": "($high-Greater($open, $close))/$open",
    "KUP2": "($high-Greater($open, $close))/($high-$low+1e-12)",
    "KLOW": "(Less($open, $close)-$low)/$open",
    "KLOW2": "(Less($open, $close)-$low)/($high-$low+1e-12)",
    "KSFT": "(2*$close-$high-$low)/$open",
    "KSFT2": "(2*$close-$high-$low)/($high-$low+1e-12)",
}

_PRICE: dict[str, str] = {
    "OPEN0": "$open/$close",
    "HIGH0": "$high/$close",
    "LOW0": "$low/$close",
    "VWAP0": "$vwap/$close",
}

_UP = "Greater($close-Ref($close, 1), 0)"
_DOWN = "Greater(Ref($close, 1)-$close, 0)"
_MOVE = "Abs($close-Ref($close, 1))"
_VUP = "Greater($volume-Ref($volume, 1), 0)"
_VDOWN = "Greater(Ref($volume, 1)-$volume, 0)"
_VMOVE = "Abs($volume-Ref($volume, 1))"
_WV = "Abs($close / Ref($close, 1)-1)*$volume"

#: Rolling feature -> formula template (``{d}`` the window), in the handler's order.
ROLLING: dict[str, str] = {
    "ROC": "Ref($close, {d})/$close",
    "MA": "Mean($close, {d})/$close",
    "STD": "Std($close, {d})/$close",
    "BETA": "Slope($close, {d})/$close",
    "RSQR": "Rsquare($close, {d})",
    "RESI": "Resi($close, {d})/$close",
    "MAX": "Max($high, {d})/$close",
    "MIN": "Min($low, {d})/$close",
    "QTLU": "Quantile($close, {d}, 0.8)/$close",
    "QTLD": "Quantile($close, {d}, 0.2)/$close",
    "RANK": "Rank($close, {d})",
    "RSV": "($close-Min($low, {d}))/(Max($high, {d})-Min($low, {d})+1e-12)",
    "IMAX": "IdxMax($high, {d})/{d}",
    "IMIN": "IdxMin($low, {d})/{d}",
    "IMXD": "(IdxMax($high, {d})-IdxMin($low, {d}))/{d}",
    "CORR": "Corr($close, Log($volume+1), {d})",
    "CORD": "Corr($close / Ref($close, 1), Log($volume / Ref($volume, 1)+1), {d})",
    "CNTP": "Mean($close>Ref($close, 1), {d})",
    "CNTN": "Mean($close<Ref($close, 1), {d})",
    "CNTD": "Mean($close>Ref($close, 1), {d})-Mean($close<Ref($close, 1), {d})",
    "SUMP": f"Sum({_UP}, {{d}})/(Sum({_MOVE}, {{d}})+1e-12)",
    "SUMN": f"Sum({_DOWN}, {{d}})/(Sum({_MOVE}, {{d}})+1e-12)",
    "SUMD": f"(Sum({_UP}, {{d}})-Sum({_DOWN}, {{d}}))/(Sum({_MOVE}, {{d}})+1e-12)",
    "VMA": "Mean($volume, {d})/($volume+1e-12)",
    "VSTD": "Std($volume, {d})/($volume+1e-12)",
    "WVMA": f"Std({_WV}, {{d}})/(Mean({_WV}, {{d}})+1e-12)",
    "VSUMP": f"Sum({_VUP}, {{d}})/(Sum({_VMOVE}, {{d}})+1e-12)",
    "VSUMN": f"Sum({_VDOWN}, {{d}})/(Sum({_VMOVE}, {{d}})+1e-12)",
    "VSUMD": f"(Sum({_VUP}, {{d}})-Sum({_VDOWN}, {{d}}))/(Sum({_VMOVE}, {{d}})+1e-12)",
}

#: Column name -> qlib formula, the 158 columns in qlib's order.
ALPHA158: dict[str, str] = {
    **_KBAR,
    **_PRICE,
    **{f"{op}{d}": template.format(d=d) for op, template in ROLLING.items() for d in WINDOWS},
}

assert len(ALPHA158) == 158

__all__ = ["ALPHA158", "ROLLING", "WINDOWS"]
