"""The base layer every other layer may import: it imports no other module of the project.

- :mod:`nautilus_app.core.paths`: default locations (catalog, results, user strategies, instruments.toml).
- :mod:`nautilus_app.core.instruments`: the Binance (and ccxt) instrument definitions, instruments.toml
  overrides and the bracket table that applies to a perpetual (:func:`~nautilus_app.core.instruments.brackets_for`).
- :mod:`nautilus_app.core.brackets` / :mod:`nautilus_app.core.binance_brackets`: Binance USDT-M
  maintenance-margin bracket tables (:class:`~nautilus_app.core.brackets.MarginError` for a bad table).
- :mod:`nautilus_app.core.retry`: the one retry loop of the HTTP and exchange clients (sync and async).

Layers (README "Architecture: layers"; ``make lint`` checks them with import-linter):
``nautilus_app.core`` <- ``catalog`` <- ``strategies`` | ``adapters`` <- ``nautilus_app`` <- ``dash_ui`` <-
the CLI (``nautilus_app.cli``): a layer imports only the layers to its left.
"""
