"""Stand-ins for venues and data used by tests, benchmarks and paper replay sessions.

Nothing here talks to a real venue: the replay server plays stored bars as an exchange feed, the
Binance stand-in answers signed REST/WebSocket requests, the Ethereal mock serves the venue's API,
and the Dash fixtures build synthetic results folders. Production code paths import these modules
only where a user explicitly asks for a replayed or simulated venue (e.g. a paper session with
``replay = true``).
"""
