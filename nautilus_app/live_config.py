"""The optional ``[live]`` table of a run config: trading real money (or Binance's testnet) on a ``LiveNode``.

Light module (msgspec only, no Nautilus import; it imports no other module of the app).
``nautilus_app/config.py`` validates a ``[live]`` table with :func:`parse_live` and leaves it out of
:class:`~nautilus_app.config.BacktestConfig` (so adding the table does not change a config's digest or the
golden runs); ``nautilus-app live`` reads it with :func:`nautilus_app.config.load_live_config`. Schema (docs/live.md has the full table):

```toml
[live]
enabled = true                 # opt-in #1 (opt-in #2: --i-understand-this-trades-real-money)
testnet = false                # Binance: the testnet endpoints and BINANCE_*TESTNET* keys
trader_id = "LIVE-001"
api_key_env = "BINANCE_API_KEY"        # or key_file = "~/.config/nautilus/binance.toml" (mode 0600)
api_secret_env = "BINANCE_API_SECRET"
on_unknown = "refuse"          # venue positions/orders the node does not know: refuse | adopt | flatten
settlement_currency = "USDE"   # Ethereal only: USDe as Nautilus USDE (default) or "USDT" (legacy mapping)
[live.limits]
max_order_notional = 500.0     # quote currency (USDT) per order
max_position_notional = 1000.0 # per instrument, after the order
max_total_notional = 2000.0    # all instruments, after the order
max_leverage = 2.0             # gross notional / equity after the order
max_open_orders = 10
max_orders_per_minute = 20
daily_loss_limit = 0.03        # fraction of the equity at 00:00 UTC
max_drawdown = 0.10            # fraction of the peak equity of the session
flatten_on_breach = false      # also close positions when daily loss / drawdown trips
[live.monitoring]
metrics_port = 9464            # Prometheus /metrics on metrics_host (127.0.0.1)
[[live.alerts.webhooks]]
kind = "slack"                 # slack | discord | telegram | json
url_env = "SLACK_WEBHOOK_URL"
```
"""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

Positive = Annotated[float, msgspec.Meta(gt=0)]
Fraction = Annotated[float, msgspec.Meta(gt=0, lt=1)]

ALERT_RULES = ("drawdown", "daily_loss", "stale_feed", "disconnect", "reconnect", "order_rejected", "order_denied",
               "strategy_exception", "liquidation_risk", "funding_spike", "session_stopped", "kill_switch",
               "reconciliation")


class LiveConfigError(ValueError):
    """The ``[live]`` table or the secrets it names are not usable (names the key)."""


class _S(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


class LiveLimits(_S):
    """Safety rails checked on every order before it reaches the execution client (None = off)."""

    max_order_notional: Positive | None = None
    max_position_notional: Positive | None = None
    max_total_notional: Positive | None = None
    max_leverage: Positive | None = None
    max_open_orders: Annotated[int, msgspec.Meta(ge=1)] | None = None
    max_orders_per_minute: Annotated[int, msgspec.Meta(ge=1)] | None = None
    daily_loss_limit: Fraction | None = None
    max_drawdown: Fraction | None = None
    flatten_on_breach: bool = False


class Webhook(_S):
    """One alert destination. Secrets (URL, Telegram bot token) from the environment or a 0600 file."""

    kind: Literal["slack", "discord", "telegram", "json"]
    url: str | None = None  # allowed for non-secret endpoints (a local receiver); prefer url_env/url_file
    url_env: str | None = None
    url_file: str | None = None
    token_env: str | None = None  # telegram bot token
    token_file: str | None = None
    chat_id: str | None = None  # telegram
    api_base: str = "https://api.telegram.org"  # telegram (tests point it at a local receiver)


class AlertSettings(_S):
    """Which rules fire, where they go, and how often."""

    rules: list[str] = msgspec.field(default_factory=lambda: list(ALERT_RULES))
    webhooks: list[Webhook] = msgspec.field(default_factory=list)
    min_interval_seconds: Annotated[float, msgspec.Meta(ge=0)] = 60.0  # per rule and subject
    max_per_hour: Annotated[int, msgspec.Meta(ge=1)] = 60
    drawdown_warn: Fraction | None = 0.05
    daily_loss_warn: Fraction | None = 0.02
    funding_spike: Positive | None = 0.001  # |funding rate| per interval
    liquidation_buffer: Fraction | None = 0.2  # alert when (equity - maintenance) / equity falls below
    timeout_seconds: Positive = 5.0


class MonitoringSettings(_S):
    metrics_port: Annotated[int, msgspec.Meta(ge=0, le=65535)] | None = None  # 0 = any free port
    metrics_host: str = "127.0.0.1"


class LiveSettings(_S):
    """The ``[live]`` table (see the module docstring)."""

    enabled: bool = False
    testnet: bool = False
    trader_id: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_]+-[A-Za-z0-9_]+$")] = "LIVE-001"
    api_key_env: str | None = None
    api_secret_env: str | None = None
    key_file: str | None = None
    base_url_http: str | None = None
    base_url_ws: str | None = None
    base_url_ws_api: str | None = None  # Binance spot: the WebSocket API (session.logon + user data), SBE
    # Ethereal: Nautilus currency of USDe ("USDE", default; "USDT" = the adapter's legacy mapping). Binance: USDT
    settlement_currency: Literal["USDE", "USDT"] | None = None
    on_unknown: Literal["refuse", "adopt", "flatten"] = "refuse"
    stale_after_seconds: Positive | None = None
    results_every_seconds: Annotated[float, msgspec.Meta(ge=0)] = 5.0
    control_dir: str | None = None  # default <results root>/.live/<trader_id>
    limits: LiveLimits = msgspec.field(default_factory=LiveLimits)
    monitoring: MonitoringSettings = msgspec.field(default_factory=MonitoringSettings)
    alerts: AlertSettings = msgspec.field(default_factory=AlertSettings)


def _readable(msg: str) -> str:
    if " - at `$." in msg:
        what, where = msg.rsplit(" - at `$.", 1)
        return f"key live.{where.rstrip('`')}: {what}"
    return msg


def parse_live(table: Any, source: str = "<config>") -> LiveSettings:
    """Validate a ``[live]`` table.

    Raises:
        LiveConfigError: unknown key, wrong type, value out of range, unknown alert rule (names the key).
    """
    try:
        s = msgspec.convert(table, LiveSettings)
    except msgspec.ValidationError as e:
        raise LiveConfigError(f"{source}: {_readable(str(e))}") from e
    bad = [r for r in s.alerts.rules if r not in ALERT_RULES]
    if bad:
        raise LiveConfigError(f"{source}: key live.alerts.rules = {bad!r}: expected names from {list(ALERT_RULES)}")
    for i, w in enumerate(s.alerts.webhooks):
        if w.kind == "telegram":
            if not (w.token_env or w.token_file) or not w.chat_id:
                raise LiveConfigError(f"{source}: key live.alerts.webhooks[{i}]: telegram needs token_env or "
                                      "token_file and chat_id")
        elif sum(x is not None for x in (w.url, w.url_env, w.url_file)) != 1:
            raise LiveConfigError(f"{source}: key live.alerts.webhooks[{i}]: expected exactly one of url, url_env, "
                                  "url_file")
    if s.key_file is not None and (s.api_key_env or s.api_secret_env):
        raise LiveConfigError(f"{source}: key live.key_file: expected key_file or api_key_env/api_secret_env, not both")
    return s


# ---- secrets -----------------------------------------------------------------------------------
def read_secret_file(path: str | Path) -> str:
    """Contents (stripped) of a secret file that only its owner can read (mode 0600 or 0400).

    Raises:
        LiveConfigError: missing, not a regular file, or readable/writable by group or others.
    """
    p = Path(os.path.expanduser(str(path)))
    try:
        st = p.stat()
    except OSError as e:
        raise LiveConfigError(f"secret file {p}: cannot read: {e.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise LiveConfigError(f"secret file {p}: not a regular file")
    if st.st_mode & 0o077:
        raise LiveConfigError(f"secret file {p}: mode {oct(st.st_mode & 0o777)}: expected 0600 (chmod 600 {p})")
    return p.read_text().strip()


def default_key_env(venue: str, testnet: bool) -> tuple[str, str]:
    """Environment variable names Nautilus itself uses for this venue/environment."""
    if venue == "BINANCE_USDM":
        return (("BINANCE_FUTURES_TESTNET_API_KEY", "BINANCE_FUTURES_TESTNET_API_SECRET") if testnet
                else ("BINANCE_API_KEY", "BINANCE_API_SECRET"))
    if venue == "BINANCE":
        return (("BINANCE_TESTNET_API_KEY", "BINANCE_TESTNET_API_SECRET") if testnet
                else ("BINANCE_API_KEY", "BINANCE_API_SECRET"))
    return ("ETHEREAL_ACCOUNT_ADDRESS", "ETHEREAL_PRIVATE_KEY")


class Credentials:
    """API key and secret; ``repr``/``str`` never show them."""

    __slots__ = ("api_key", "api_secret", "source")

    def __init__(self, api_key: str, api_secret: str, source: str) -> None:
        self.api_key = api_key
        self.api_secret = api_secret
        self.source = source

    def __repr__(self) -> str:
        return f"Credentials(source={self.source!r}, api_key=<redacted>, api_secret=<redacted>)"

    __str__ = __repr__

    def secrets(self) -> list[str]:
        return [self.api_key, self.api_secret]


def resolve_credentials(s: LiveSettings, venue: str, env: dict[str, str] | None = None) -> Credentials:
    """Key and secret from ``key_file`` (TOML ``api_key``/``api_secret``, mode 0600) or the environment.

    Raises:
        LiveConfigError: missing variables or file, bad file mode, missing keys in the file.
    """
    env = os.environ if env is None else env
    if s.key_file is not None:
        text = read_secret_file(s.key_file)
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise LiveConfigError(f"key file {s.key_file}: invalid TOML (line {e.lineno})") from None
        if not isinstance(data.get("api_key"), str) or not isinstance(data.get("api_secret"), str):
            raise LiveConfigError(f"key file {s.key_file}: expected string keys api_key and api_secret")
        return Credentials(data["api_key"], data["api_secret"], f"file {s.key_file}")
    kenv, senv = default_key_env(venue, s.testnet)
    kenv, senv = s.api_key_env or kenv, s.api_secret_env or senv
    missing = [n for n in (kenv, senv) if not env.get(n)]
    if missing:
        raise LiveConfigError(f"API credentials: environment variable(s) {missing} not set (or set live.key_file "
                              "to a 0600 TOML file with api_key and api_secret)")
    return Credentials(env[kenv], env[senv], f"env {kenv}/{senv}")


def webhook_secret(w: Webhook, env: dict[str, str] | None = None) -> tuple[str, str | None]:
    """``(url, telegram token or None)`` of a webhook, from the config, environment or a 0600 file."""
    env = os.environ if env is None else env
    token = None
    if w.kind == "telegram":
        token = env.get(w.token_env, "") if w.token_env else read_secret_file(w.token_file or "")
        if not token:
            raise LiveConfigError(f"telegram webhook: environment variable {w.token_env} not set")
        return f"{w.api_base.rstrip('/')}/bot{token}/sendMessage", token
    if w.url is not None:
        return w.url, None
    if w.url_env is not None:
        url = env.get(w.url_env, "")
        if not url:
            raise LiveConfigError(f"{w.kind} webhook: environment variable {w.url_env} not set")
        return url, None
    return read_secret_file(w.url_file or ""), None
