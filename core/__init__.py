"""The base layer every other layer may import: it imports no other module of the project.

- :mod:`core.paths`: default locations (catalog, results, user strategies, instruments.toml).
- :mod:`core.instruments`: the Binance (and ccxt) instrument definitions, instruments.toml
  overrides and the bracket table that applies to a perpetual (:func:`~core.instruments.brackets_for`).
- :mod:`core.brackets` / :mod:`core.binance_brackets`: Binance USDT-M
  maintenance-margin bracket tables (:class:`~core.brackets.MarginError` for a bad table).
- :mod:`core.retry`: the one retry loop of the HTTP and exchange clients (sync and async).
- :mod:`core.times`: UTC timestamps and their texts from integer nanoseconds.
- :mod:`core.parquet`: the Parquet write options of result tables.

Layers (README "Architecture: layers"; ``make lint`` checks them with import-linter):
``core`` <- ``catalog`` <- ``strategies`` | ``adapters`` <- ``nautilus_app`` <- ``dash_ui`` <-
the CLI (``nautilus_app.cli``): a layer imports only the layers to its left.
"""
