"""AG Grid (dash-ag-grid) column definitions shared by the pages' tables.

Every numeric column shows its value in the unit of its metrics key (:func:`dash_ui.formatting.kind`):
USDT with 2 decimals, fractions as percents, ratios with 3 decimals, counts as integers; the header
carries the unit. Row data keep metrics.json units (fractions, USDT); **number filters are typed in the
displayed unit**: a percent column's ``filterValueGetter`` multiplies by 100, so 10 in its filter means
10 %. PnL-like columns are green when positive and red when negative. Headers sort with the mouse or the
keyboard (Tab/arrows to a header, Enter), AG Grid's default.
"""

from __future__ import annotations

from dash_ui.formatting import ag_format, kind, label, unit

#: Keys coloured green (> 0) / red (< 0).
SIGNED_KEYS = {"total_return", "excess_return", "cagr", "net_pnl_usdt", "pnl_before_costs_usdt", "objective",
               "return_contribution", "expectancy_usdt", "expectancy_return", "pnl", "return_frac",
               "mean_rank_value", "mean", "worst", "best"}
PNL_STYLE = {"styleConditions": [{"condition": "params.value > 0", "style": {"color": "#1b7f2a"}},
                                 {"condition": "params.value < 0", "style": {"color": "#c62828"}}]}
#: Grid options common to every table: keyboard-reachable sorting is AG Grid's default; no column
#: virtualisation (all columns in the DOM, so the page text and screen readers see every column).
GRID_OPTIONS = {"suppressColumnVirtualisation": True, "enableCellTextSelection": True, "ensureDomOrder": True,
                "tooltipShowDelay": 300, "animateRows": False}


def header(key: str, text: str | None = None) -> str:
    """``"Total return (%)"``: the label with the unit of ``key`` when it has one."""
    u = unit(key)
    text = text or label(key)
    if not u or u == "UTC" or f"({u}" in text or u.lower() in text.lower():
        return text
    return f"{text} ({u})"


def number_col(key: str, text: str | None = None, *, field: str | None = None, fmt_key: str | None = None,
               tooltip: str | None = None, signed: bool | None = None) -> dict:
    """A right-aligned number column for metrics key ``fmt_key or key`` read from row field ``field or key``."""
    f = field or key
    fk = fmt_key or key
    d = {"field": f, "headerName": header(fk, text), "sortable": True, "resizable": True,
         "filter": "agNumberColumnFilter", "type": "rightAligned", "headerTooltip": tooltip or f"{fk}"}
    d |= ag_format(fk)
    if kind(fk) == "percent":  # filter typed in the displayed unit: 10 = 10 %
        d["filterValueGetter"] = {"function": f"params.data.{f} == null ? null : params.data.{f} * 100"}
        d["headerTooltip"] += " (filter in %: 10 = 10 %)"
    if signed or (signed is None and (fk in SIGNED_KEYS or f in SIGNED_KEYS)):
        d["cellStyle"] = PNL_STYLE
    return d


def text_col(field: str, text: str, **extra) -> dict:
    """A text column (contains / equals filter)."""
    return {"field": field, "headerName": text, "sortable": True, "resizable": True, "filter": "agTextColumnFilter",
            **extra}


def link_col(field: str, text: str, **extra) -> dict:
    """A column whose values are markdown (``[text](/run/...)`` links rendered as ``<a>``)."""
    return text_col(field, text, cellRenderer="markdown", **extra)
