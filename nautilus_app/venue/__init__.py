"""Realistic simulated exchange on top of Nautilus 2.0.0rc7's seams (issue 9).

One module per model: :mod:`.fill_timing` (next-open fills, a Python ``FillModel``),
:mod:`.slippage`, :mod:`.fees` (maker/taker tiers, liquidation clearance fee),
:mod:`.margin` (maintenance margin and liquidation formulas on the Binance bracket tables of
:mod:`core.brackets`), :mod:`.liquidation` (the actor that
closes positions at the liquidation price), :mod:`.latency` (seeded random latency),
:mod:`.funding` (funding-row guards, constant-rate funding). docs/simulation.md describes every
assumption.
"""
