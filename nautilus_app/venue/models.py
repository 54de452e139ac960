"""A venue's models built from its config: the config is plain data, this module turns it into models.

A ``[[venues]]`` table is decoded into :class:`nautilus_app.config.VenueConfig` (frozen msgspec struct,
validated, ``costs`` defaults resolved). Everything that *uses* a venue (the backtest engine setup, the
paper execution client, results) gets its models here instead of from methods of the config:

* :func:`venue_fees` -> ``(maker, taker)`` fee fractions (explicit, else the ``fee_tier``'s, else
  Binance VIP 0: :data:`DEFAULT_FEES`);
* :func:`slippage_model` -> :class:`nautilus_app.venue.slippage.SlippageModel`;
* :func:`bracket_overrides` -> maintenance-bracket tables per symbol for
  :func:`core.instruments.brackets_for`;
* :func:`leverage_for` -> the leverage of one instrument.

Light module: the model modules are imported by the functions that need them; nothing here imports
:mod:`nautilus_app.config` (the config imports this module, not the other way round). ``venue`` is
anything with the fields of a ``VenueConfig``.
"""

from __future__ import annotations

from typing import Any

#: Binance's default (VIP 0, no BNB discount) maker/taker fees per venue, as fractions of notional.
#: Source: https://www.binance.com/en/fee/schedule (spot 0.1000 % / 0.1000 %) and
#: https://www.binance.com/en/fee/futureFee (USDT-M 0.0200 % / 0.0500 %).
DEFAULT_FEES: dict[str, tuple[float, float]] = {
    "BINANCE": (0.001, 0.001),
    "BINANCE_USDM": (0.0002, 0.0005),
}


def venue_fees(venue: Any) -> tuple[float, float]:
    """(maker, taker) fee fractions of notional: explicit ``maker_fee`` / ``taker_fee`` first, then
    ``fee_tier``'s (:func:`nautilus_app.venue.fees.tier_rates`), then :data:`DEFAULT_FEES`."""
    default: tuple[float | None, float | None] = DEFAULT_FEES.get(venue.name, (None, None))
    if venue.fee_tier is not None:
        from nautilus_app.venue.fees import tier_rates

        default = tier_rates(venue.name, venue.fee_tier)
    maker = venue.maker_fee if venue.maker_fee is not None else default[0]
    taker = venue.taker_fee if venue.taker_fee is not None else default[1]
    assert maker is not None and taker is not None  # guaranteed by the config's validation
    return maker, taker


def leverage_for(venue: Any, instrument_id: str) -> float:
    """Leverage (a multiple) of an instrument on the venue: its ``leverages`` entry or ``default_leverage``."""
    return float(venue.leverages.get(instrument_id, venue.default_leverage))


def slippage_model(venue: Any) -> Any:
    """The venue's :class:`nautilus_app.venue.slippage.SlippageModel` (bps, from the resolved ``slippage*`` fields)."""
    from nautilus_app.venue.slippage import SlippageModel

    return SlippageModel(venue.slippage, venue.slippage_bps, venue.slippage_impact_bps, venue.slippage_max_bps)


def bracket_overrides(venue: Any) -> dict[str, list[tuple[str, Any]]]:
    """The venue's ``brackets`` as :func:`core.instruments.brackets_for` overrides, keyed by
    symbol (``ETHUSDT``): ``[(effective_from, brackets)]`` per symbol.

    Raises:
        core.brackets.MarginError: a table that is not valid (names the instrument).
    """
    from core.brackets import make_brackets

    out: dict[str, list[tuple[str, Any]]] = {}
    for iid, versions in venue.brackets.items():
        symbol = iid.split(".")[0].removesuffix("-PERP")
        out[symbol] = [(v.effective_from, make_brackets([tuple(t) for t in v.tiers], name=iid)) for v in versions]
    return out
