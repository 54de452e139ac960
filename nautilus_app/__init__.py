"""nautilus_app: backtesting, paper trading and reporting for crypto strategies on NautilusTrader 2."""
