"""Ethereal paper trading: Ethereal data client (against the mock venue) + the Redis-backed paper
execution client, kill -9 and restart.

The node runs in a subprocess (this file run as a script); the mock venue runs in the test process,
so it survives the kill. The test publishes L2Book diffs (new quotes) and reads JSON snapshots the
node writes from its own thread (cache positions, open orders, account balances, fill trade ids).
Expected numbers (fill prices, fees, realized PnL, balance) are computed here by hand from the
fixture book and the fee rates.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest
import redis

REPO = Path(__file__).resolve().parents[1]
TRADER = "EPAPERTEST-001"
MAKER, TAKER = Decimal("0.0001"), Decimal("0.0003")
START = Decimal("100000")


# ---------------------------------------------------------------- node (subprocess side)
def _node_main(mode: str, out: str, rest: str, ws: str) -> None:
    import datetime as dt

    from nautilus_trader.common import Environment
    from nautilus_trader.config import DataClientConfig, ExecutionClientConfig
    from nautilus_trader.live import LiveNode
    from nautilus_trader.model import InstrumentId, OrderSide, Price, Quantity, TraderId, Venue
    from nautilus_trader.trading import Strategy, StrategyConfig

    from adapters.ethereal.config import EtherealDataClientConfig
    from adapters.ethereal.factories import EtherealDataClientFactory
    from adapters.ethereal.paper_exec import EtherealPaperExecClientFactory

    iid = InstrumentId.from_str("BTCUSD-PERP.ETHEREAL")
    out_path = Path(out)

    class Driver(Strategy):
        def __init__(self) -> None:
            # claim the orders/positions reconciliation restores (else they belong to EXTERNAL)
            super().__init__(StrategyConfig(external_order_instrument_ids=[iid]))
            self.sent = False
            self.at_start = None

        def snapshot(self) -> dict:
            acct = self.cache.account_for_venue(Venue("ETHEREAL"))
            fills = sorted(str(e.trade_id) for o in self.cache.orders() for e in o.events()
                           if type(e).__name__ == "OrderFilled")
            return {
                "positions": sorted([str(p.instrument_id), str(p.side).split(".")[-1], str(p.quantity),
                                     str(p.avg_px_open)] for p in self.cache.positions_open()),
                "open_orders": sorted([str(o.client_order_id), str(o.side).split(".")[-1], str(o.quantity),
                                       str(getattr(o, "price", None))] for o in self.cache.orders_open()),
                "balances": {} if acct is None else {str(c): str(b.total.as_decimal()) for c, b in acct.balances().items()},
                "fills": fills,
                "orders": sorted([str(o.client_order_id), str(o.status).split(".")[-1]] for o in self.cache.orders()),
            }

        def on_start(self) -> None:
            self.at_start = self.snapshot()
            self.subscribe_quotes(iid)
            self.clock.set_timer("snap", dt.timedelta(milliseconds=100), callback=self._snap)

        def _snap(self, event) -> None:
            tmp = out_path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"at_start": self.at_start, "now": self.snapshot()}))
            os.replace(tmp, out_path)

        def on_quote(self, q) -> None:
            if self.sent:
                return
            self.sent = True
            f = self.order_factory
            if mode == "trade":
                self.submit_order(f.market(iid, OrderSide.BUY, Quantity.from_str("0.0300")))
                self.submit_order(f.limit(iid, OrderSide.BUY, Quantity.from_str("0.0100"), Price.from_str("94000")))
            elif mode == "reduce":
                self.submit_order(f.market(iid, OrderSide.SELL, Quantity.from_str("0.0100")))

    dcfg = EtherealDataClientConfig(network="testnet", rest_url=rest, ws_url=ws, tickers=["BTCUSD"],
                                    settlement_currency="USDT",  # this paper book keeps USDT balances
                                    instrument_refresh_mins=0)
    efac = EtherealPaperExecClientFactory(starting_balances=[f"{START} USDT"], maker_fee=MAKER, taker_fee=TAKER)
    node = (LiveNode.builder("EPAPER", TraderId(TRADER), Environment.SANDBOX)
            .add_data_client("ETHEREAL", EtherealDataClientFactory(dcfg), DataClientConfig())
            .add_exec_client("ETHEREAL", efac, ExecutionClientConfig())
            .with_timeout_connection(10).with_timeout_reconciliation(10).with_timeout_disconnection_secs(2)
            .with_delay_post_stop_secs(0).with_delay_shutdown_secs(0)
            .build())
    node.add_strategy(Driver())
    handle = node.handle()
    signal.signal(signal.SIGTERM, lambda *a: handle.stop())
    node.run()


# ---------------------------------------------------------------- test side
def _spawn(mode: str, out: Path, server) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, mode, str(out), server.rest_url, server.ws_url], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=open(out.with_suffix(".log"), "w"),
                            env={**os.environ, "PYTHONPATH": str(REPO)})


def _read(out: Path) -> dict | None:
    try:
        return json.loads(out.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _wait(pred, timeout: float, what: str, proc: subprocess.Popen, out: Path):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        snap = _read(out)
        if snap is not None and pred(snap):
            return snap
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    log = out.with_suffix(".log").read_text()[-3000:] if out.with_suffix(".log").exists() else ""
    raise AssertionError(f"timed out waiting for {what}; last snapshot {_read(out)}; log tail:\n{log}")


class _Ticker:
    """Publishes an L2Book diff every 150 ms (best-level size alternates), so quotes keep coming."""

    def __init__(self, server) -> None:
        self.server, self.stop_evt = server, threading.Event()
        self.asks = [["95001", "0.5000"]]
        self.bids = [["95000", "0.4000"]]
        self.t = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        i = 0
        while not self.stop_evt.is_set():
            i += 1
            size = "0.5000" if i % 2 else "0.5100"
            asks = [[self.asks[0][0], size]]
            try:
                self.server.call(self.server.venue.publish_book_diff, "BTCUSD", [], asks)
            except Exception:  # noqa: BLE001 - server stopping
                return
            time.sleep(0.15)


@pytest.fixture
def rds():
    r = redis.Redis(decode_responses=True)
    for k in r.scan_iter(f"ethpaper:{TRADER}:*"):
        r.delete(k)
    yield r
    for k in r.scan_iter(f"ethpaper:{TRADER}:*"):
        r.delete(k)
    assert not list(r.scan_iter(f"ethpaper:{TRADER}:*"))


def test_ethereal_paper_kill9_restart_keeps_book(tmp_path, rds):
    from nautilus_app.testkit.ethereal_mock import MockEtherealServer
    from nautilus_app.testkit.ethereal_mock.testkit import FIXTURES

    server = MockEtherealServer(FIXTURES).start()
    ticker = _Ticker(server)
    ticker.t.start()
    procs = []
    try:
        # ---- run 1: market buy 0.03 (taker at the ask 95001), resting limit buy 0.01 @ 94000; kill -9
        out1 = tmp_path / "run1.json"
        p1 = _spawn("trade", out1, server)
        procs.append(p1)
        s1 = _wait(lambda s: s["now"]["positions"] and s["now"]["open_orders"], 60, "run-1 fill", p1, out1)["now"]
        time.sleep(0.5)
        s1 = _read(out1)["now"]
        os.kill(p1.pid, signal.SIGKILL)
        p1.wait(10)
        fee1 = Decimal("0.03") * Decimal("95001") * TAKER
        assert s1["positions"] == [["BTCUSD-PERP.ETHEREAL", "LONG", "0.0300", "95001.0"]]
        assert [o[1:] for o in s1["open_orders"]] == [["BUY", "0.0100", "94000"]]
        assert Decimal(s1["balances"]["USDT"]) == START - fee1
        assert len(s1["fills"]) == 1
        red_fills = set(rds.hkeys(f"ethpaper:{TRADER}:fills"))
        assert red_fills == set(s1["fills"])

        # ---- run 2 (after kill -9): reconciliation gives back the same book before on_start; sell 0.01
        out2 = tmp_path / "run2.json"
        p2 = _spawn("reduce", out2, server)
        procs.append(p2)
        s2 = _wait(lambda s: s["now"]["positions"] and s["now"]["positions"][0][2] == "0.0200", 60,
                   "run-2 reduce", p2, out2)
        start2 = s2["at_start"]
        assert start2["positions"] == s1["positions"]
        assert start2["open_orders"] == s1["open_orders"]
        assert start2["balances"] == s1["balances"]
        assert start2["fills"] == s1["fills"]
        # the sell 0.01 filled at the bid 95000: realized (95000 - 95001) x 0.01, taker fee
        fee2 = Decimal("0.01") * Decimal("95000") * TAKER
        now2 = _read(out2)["now"]
        assert Decimal(now2["balances"]["USDT"]) == START - fee1 - fee2 + Decimal("0.01") * (95000 - 95001)
        # ---- the resting limit (restored by reconciliation) fills when the ask reaches 94000: maker fill
        server.call(server.venue.publish_book_diff, "BTCUSD",
                    [[str(p), "0"] for p in range(94996, 95001)] + [["93990", "0.1000"]],
                    [[str(p), "0"] for p in range(95001, 95006)] + [["94000", "0.3000"]])
        ticker.asks = [["94000", "0.3000"]]
        s3 = _wait(lambda s: not s["now"]["open_orders"] and len(s["now"]["fills"]) == 3, 30, "resting fill",
                   p2, out2)["now"]
        fee3 = Decimal("0.01") * Decimal("94000") * MAKER
        assert s3["positions"][0][2] == "0.0300"
        assert Decimal(s3["balances"]["USDT"]) == START - fee1 - fee2 - fee3 + Decimal("0.01") * (95000 - 95001)
        os.kill(p2.pid, signal.SIGKILL)
        p2.wait(10)

        # ---- run 3: nothing lost or duplicated across two kills
        out3 = tmp_path / "run3.json"
        p3 = _spawn("watch", out3, server)
        procs.append(p3)
        s4 = _wait(lambda s: s["at_start"] is not None, 60, "run-3 start", p3, out3)["at_start"]
        red = json.loads(json.dumps(rds.hgetall(f"ethpaper:{TRADER}:fills")))
        assert sorted(s4["fills"]) == sorted(red) == sorted(s3["fills"])
        assert len(set(s4["fills"])) == 3
        assert s4["positions"] == s3["positions"] and s4["balances"] == s3["balances"]
        assert s4["open_orders"] == []
        p3.send_signal(signal.SIGTERM)
        p3.wait(30)
    finally:
        ticker.stop_evt.set()
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
        server.stop()


# ---------------------------------------------------------------- the paper command, unchanged strategy
_SESSION_TOML = """
name = "paper_ethereal_test"
start = "2026-01-01"
end = "2026-01-02"
bar_types = ["BTCUSD-PERP.ETHEREAL-1-SECOND-LAST-EXTERNAL"]
[[venues]]
name = "ETHEREAL"
account_type = "MARGIN"
starting_balances = ["100000 USDT"]
default_leverage = 5
maker_fee = 0.0001
taker_fee = 0.0003
liquidation = false
[[strategies]]
name = "buy_and_hold"
[strategies.params]
instrument_id = "BTCUSD-PERP.ETHEREAL"
bar_type = "BTCUSD-PERP.ETHEREAL-1-SECOND-LAST-EXTERNAL"
position_fraction = 0.1
close_positions_on_stop = false
[paper]
data_source = "ethereal"
trader_id = "PAPER_ETHTEST-001"
results_every_seconds = 0.5
"""


class _Trades(_Ticker):
    """Quotes (book diffs) and one public trade (95000 or 95001) every 100 ms, so 1-second bars close."""

    def run(self) -> None:
        i = 0
        while not self.stop_evt.is_set():
            i += 1
            v = self.server.venue
            msg = {"e": "TradeFill", "t": v.now_ms(), "data": {"s": "BTCUSD", "t": v.now_ms(), "d": [
                {"id": f"00000000-0000-4000-8000-{i:012d}", "px": "95001" if i % 2 else "95000", "sz": "0.0100", "sd": 0, "sids": []}]}}
            try:
                self.server.call(v.publish_book_diff, "BTCUSD", [], [["95001", "0.5000" if i % 2 else "0.5100"]])
                self.server.call(v.publish, "TradeFill", "BTCUSD", msg)
            except Exception:  # noqa: BLE001 - server stopping
                return
            time.sleep(0.1)


def _status(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _wait_status(path: Path, pred, timeout: float, what: str, proc: subprocess.Popen, log: Path) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        st = _status(path)
        if st is not None and pred(st):
            return st
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; status {_status(path)}; log:\n{log.read_text()[-3000:]}")


def test_paper_command_on_ethereal_kill9_resumes_strategy_position(tmp_path):
    import pandas as pd

    from nautilus_app.testkit.ethereal_mock import MockEtherealServer
    from nautilus_app.testkit.ethereal_mock.testkit import FIXTURES

    r = redis.Redis(decode_responses=True)
    trader = "PAPER_ETHTEST-001"
    cfg = tmp_path / "paper_ethereal.toml"
    cfg.write_text(_SESSION_TOML)
    server = MockEtherealServer(FIXTURES).start()
    feed = _Trades(server)
    feed.t.start()
    results = tmp_path / "results"
    status = results / "eth-paper" / "status.json"
    procs: list[subprocess.Popen] = []

    def spawn(*extra: str) -> tuple[subprocess.Popen, Path]:
        log = tmp_path / f"node{len(procs)}.log"
        p = subprocess.Popen([sys.executable, "scripts/run_paper.py", str(cfg), "--base-url-http", server.rest_url,
                              "--base-url-ws", server.ws_url, "--results-dir", str(results), "--run-id", "eth-paper",
                              *extra], cwd=REPO, stdout=subprocess.DEVNULL, stderr=open(log, "w"),
                             env={**os.environ, "PYTHONPATH": str(REPO)})
        procs.append(p)
        return p, log

    try:
        p1, log1 = spawn("--fresh")
        st1 = _wait_status(status, lambda s: s["positions"] and s["start_number"] == 1, 60, "entry", p1, log1)
        time.sleep(1.5)  # a few more bars with the position open
        st1 = _status(status)
        os.kill(p1.pid, signal.SIGKILL)
        p1.wait(10)
        fills_before = r.hgetall(f"simpaper:{trader}:fills")
        assert len(fills_before) == 1
        fill = json.loads(next(iter(fills_before.values())))
        # buy_and_hold entered at market through the simulated client: a BUY at a traded price (the feed
        # trades at 95000 / 95001), the taker fee on the fill's notional taken from the USDT balance
        assert fill["side"] == "BUY" and float(fill["reference_px"]) in (95000.0, 95001.0)  # before slippage
        assert Decimal(fill["px"]) >= Decimal(str(fill["reference_px"]))  # a buy slips up, never down
        qty = Decimal(str(fill["qty"]))
        assert st1["positions"][0]["quantity"] == float(qty)
        # status.json carries floats: compare to the cent's millionth
        assert float(st1["balances"]["USDT"]) == pytest.approx(float(START - Decimal(str(fill["fee"]))), abs=1e-6)

        p2, log2 = spawn()
        st2 = _wait_status(status, lambda s: s["start_number"] == 2 and s["bars_this_start"] >= 4, 60,
                           "restart", p2, log2)
        # same position (claimed by the strategy, so buy_and_hold does not buy again), same balance
        assert [(p["instrument_id"], p["side"], p["quantity"], p["avg_px_open"], p["strategy_id"])
                for p in st2["positions"]] == [(p["instrument_id"], p["side"], p["quantity"], p["avg_px_open"],
                                                p["strategy_id"]) for p in st1["positions"]]
        assert st2["balances"] == st1["balances"] and st2["open_orders"] == st1["open_orders"] == []
        assert r.hgetall(f"simpaper:{trader}:fills") == fills_before
        p2.send_signal(signal.SIGTERM)
        assert p2.wait(60) == 0
        fills = pd.read_parquet(results / "eth-paper" / "fills.parquet")
        assert list(fills["trade_id"].astype(str)) == list(fills_before)  # one fill, not lost, not duplicated
        run = json.loads((results / "eth-paper" / "run.json").read_text())
        assert run["starts"] == 2 and run["data_source"] == "ethereal"
    finally:
        feed.stop_evt.set()
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
        server.stop()
        for pattern in (f"simpaper:{trader}:*", f"ethpaper:{trader}:*", f"paper:{trader}:*"):
            for k in r.scan_iter(pattern):
                r.delete(k)
        assert not list(r.scan_iter(f"*{trader}*"))


# ---------------------------------------------------------------- paper vs backtest on replayed Ethereal candles
IID = "BTCUSD-PERP.ETHEREAL"
BT = f"{IID}-1-HOUR-LAST-EXTERNAL"


EMA = '[[strategies]]\nname = "ema_cross"'
EMA_PARAMS = "position_fraction = 0.5\nfast_period = 4\nslow_period = 10\nallow_short = true"
ORDER_TYPES = (f'[[strategies]]\nstrategy_path = "{REPO}/tests/order_types_strategy.py:OrderTypes"\n'
               f'config_path = "{REPO}/tests/order_types_strategy.py:OrderTypesConfig"')


def _parity_toml(catalog: Path, trader: str, *, paper_extra: str = "", params: str = EMA_PARAMS,
                 strategy: str = EMA, venue_extra: str = "") -> str:
    """Default venue models (next-open fills, volume slippage, seeded latency, liquidation, funding)."""
    return f'''catalog = "{catalog}"
name = "eth_parity"
start = "2026-01-01"
end = "2026-01-04"
bar_types = ["{BT}"]
[[venues]]
name = "ETHEREAL"
account_type = "MARGIN"
starting_balances = ["100000 USDT"]
default_leverage = 5
maker_fee = 0.0001
taker_fee = 0.0003
{venue_extra}
[[venues.brackets."{IID}"]]
effective_from = "2020-01-01"
tiers = [[1e12, 0.025, 20]]
{strategy}
[strategies.params]
instrument_id = "{IID}"
bar_type = "{BT}"
close_positions_on_stop = false
{params}
[paper]
data_source = "ethereal"
environment = "TESTNET"
trader_id = "{trader}"
{paper_extra}
'''


@pytest.fixture
def eth_market(tmp_path):
    """The mock venue, the catalog imported from its price history (what the backtest reads), and a
    replay of the same candles as its trade/mark/funding feed."""
    from adapters.ethereal.history import import_ethereal_history
    from nautilus_app.testkit.ethereal_mock import MockEtherealServer
    from nautilus_app.testkit.ethereal_mock.testkit import FIXTURES

    server = MockEtherealServer(FIXTURES).start()
    cat = tmp_path / "cat"
    import_ethereal_history(cat, tickers=["BTCUSD"], start="2026-01-01", end="2026-01-04", interval="1h",
                            kinds=["bars", "funding", "mark"], network="testnet", rest_url=server.rest_url)
    yield server, cat
    server.stop()


def _trader(kind: str) -> str:
    """A trader id of its own per run (two runs of this file at once must not share Redis keys)."""
    import uuid

    return f"PE{kind}{uuid.uuid4().hex[:8].upper()}-001"


def _clear(trader: str) -> None:
    r = redis.Redis(decode_responses=True)
    for pattern in (f"simpaper:{trader}:*", f"ethpaper:{trader}:*", f"paper:{trader}:*"):
        for k in r.scan_iter(pattern):
            r.delete(k)


def _paper_cmd(cfg: Path, server, results: Path, *extra: str) -> list[str]:
    return [sys.executable, "scripts/run_paper.py", str(cfg), "--base-url-http", server.rest_url,
            "--base-url-ws", server.ws_url, "--results-dir", str(results), *extra]


def _run_parity(tmp_path: Path, eth_market, trader: str, n: int = 60, **toml: str):
    """Paper session over ``n`` replayed candles, then paper-vs-backtest; returns (paper path, report, paper
    fills, backtest fills) after asserting zero differences."""
    import pandas as pd

    from nautilus_app.paper_parity import FILL_COLS, compare
    from nautilus_app.testkit.ethereal_mock.replay import EtherealReplay

    server, cat = eth_market
    _clear(trader)
    cfg = tmp_path / "eth.toml"
    cfg.write_text(_parity_toml(cat, trader, **toml))
    replay = EtherealReplay(server, "BTCUSD", bar_seconds=0.08).start()
    try:
        proc = subprocess.run(_paper_cmd(cfg, server, tmp_path / "res", "--fresh", "--max-bars", str(n)),
                              capture_output=True, text=True, timeout=300, cwd=REPO,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
        assert proc.returncode == 0, proc.stderr[-4000:]
        path = Path(proc.stdout.strip().splitlines()[-1])
        rep = compare(path, tmp_path / "parity")
        assert rep.ok, rep.text()
        paper = pd.read_parquet(path / "fills.parquet")
        bt = pd.read_parquet(rep.backtest_path / "fills.parquet")
        def norm(df: pd.DataFrame) -> pd.DataFrame:
            out = df[FILL_COLS].reset_index(drop=True).copy()
            for c in ("last_qty", "last_px", "commission"):
                out[c] = out[c].astype(float).round(8)
            out["ts_event"] = pd.to_datetime(out["ts_event"].astype(str), utc=True, format="ISO8601")
            return out.astype({"instrument_id": str, "order_side": str})
        pd.testing.assert_frame_equal(norm(paper), norm(bt))
        return path, rep, paper, bt
    finally:
        replay.stop()
        _clear(trader)


def test_ethereal_paper_vs_backtest_zero_differences(tmp_path, eth_market):
    """Replayed Ethereal candles (trades on the mock's simulated clock) -> paper session on the simulated
    execution client; the backtest of the same config over the same catalog candles: identical fills
    (price, quantity, time, fees, slippage), identical funding and final balance."""
    import pandas as pd

    path, _rep, paper, bt = _run_parity(tmp_path, eth_market, _trader("PAR"))
    assert len(paper) == len(bt) >= 4, "the window must trade"
    assert (paper["last_px"].astype(float) != paper["reference_px"].astype(float)).any()  # slippage applied
    funding = pd.read_parquet(path / "funding.parquet")
    assert len(funding) >= 10  # hourly settlements on the mark (oracle) price, debited from the balance
    run = json.loads((path / "run.json").read_text())
    assert run["first_bar"] and int(run.get("warm_bars", 0) or 0) == 0
    status = json.loads((path / "status.json").read_text())
    assert status["execution"] == "simulated" and status["warm"] is True


def test_ethereal_paper_order_types_match_the_backtest(tmp_path, eth_market):
    """LIMIT (resting and marketable), STOP_LIMIT (entry and reduce-only exit), protective STOP_MARKET and
    take-profit LIMIT placed on each entry fill: the simulated client fills them as the backtest does."""
    import pandas as pd

    # 40 bars: includes a take-profit's rest filled again at a later cancel's arrival (Nautilus's
    # matching engine iterates at every command arrival between bars), a triggered stop-limit that rests
    # and then fills as taker at the book, cancels taking effect when they arrive. The next bar
    # (2026-01-02 18:00) triggers several reduce-only stops together: Nautilus's order among them and its
    # reduce-only cap are not copied (docs/paper.md)
    path, _rep, paper, _bt = _run_parity(tmp_path, eth_market, _trader("ORD"), n=40, params="",
                                         strategy=ORDER_TYPES)
    orders = pd.read_parquet(path / "orders.parquet")
    filled = orders[orders["filled_qty"].astype(float) > 0]
    kinds = set(filled["type"].astype(str))
    assert {"LIMIT", "STOP_LIMIT", "STOP_MARKET", "MARKET"} <= kinds, kinds
    assert (orders["status"].astype(str) != "DENIED").all()
    assert len(paper) >= 20
    # the take-profit's rest at the first cancel's arrival after the bar that partially filled it
    refills = paper[(paper["order_type"].astype(str) == "LIMIT")
                    & (pd.to_datetime(paper["ts_event"].astype(str), utc=True, format="ISO8601")
                       .astype("int64") % 3_600_000_000_000 != 0)]
    assert len(refills) >= 3



def _kill_restart(tmp_path: Path, eth_market, trader: str, *, kill_when=None, **toml: str) -> tuple[Path, list[str]]:
    """Fresh session on a replay that goes on while the node is down; kill -9 after 20 bars (and once
    ``kill_when(redis book orders)`` holds), restart, SIGTERM a few live bars after the catch-up; asserts
    every bar once, unique fills, zero differences from paper-vs-backtest. Returns (results, node logs)."""
    import pandas as pd

    from nautilus_app.paper_parity import compare
    from nautilus_app.testkit.ethereal_mock.replay import EtherealReplay

    server, cat = eth_market
    _clear(trader)
    cfg = tmp_path / "eth.toml"
    cfg.write_text(_parity_toml(cat, trader, paper_extra="max_catch_up_bars = 1000", **toml))
    results = tmp_path / "res"
    r = redis.Redis(decode_responses=True)
    feed_len = lambda: int(r.llen(f"simpaper:{trader}:feed"))  # noqa: E731
    replay = EtherealReplay(server, "BTCUSD", bar_seconds=0.25, hold_when_unsubscribed=False)
    procs: list[subprocess.Popen] = []

    def spawn(*extra: str) -> subprocess.Popen:
        log = open(tmp_path / f"node{len(procs)}.log", "w")
        p = subprocess.Popen(_paper_cmd(cfg, server, results, "--run-id", "eth-kill", *extra), cwd=REPO,
                             stdout=subprocess.PIPE, stderr=log, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
        procs.append(p)
        return p

    def wait(pred, timeout: float, what: str) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if pred():
                return
            time.sleep(0.02)
        logs = "".join((tmp_path / f"node{i}.log").read_text()[-2000:] for i in range(len(procs)))
        raise AssertionError(f"timed out waiting for {what} (feed {feed_len()}); logs:\n{logs}")

    try:
        p1 = spawn("--fresh")
        wait(lambda: replay._subscribed() if replay.venue else False, 60, "the node's trade subscription")
        replay.start()
        wait(lambda: feed_len() >= 20, 60, "20 bars processed")
        if kill_when is not None:
            book = lambda: [json.loads(v) for v in r.hgetall(f"simpaper:{trader}:orders").values()]  # noqa: E731
            wait(lambda: kill_when(book()), 60, "the kill condition")
        p1.kill()  # SIGKILL
        p1.wait(10)
        at_kill = feed_len()
        time.sleep(2.0)  # candles go by while the node is down
        p2 = spawn()
        wait(lambda: "missed bars processed" in (tmp_path / "node1.log").read_text(), 90, "the catch-up")
        caught = feed_len()
        wait(lambda: feed_len() >= caught + 3, 60, "live bars after the catch-up")
        p2.send_signal(signal.SIGTERM)
        out, _ = p2.communicate(timeout=60)
        assert p2.returncode == 0, (tmp_path / "node1.log").read_text()[-3000:]
        path = Path(out.strip().splitlines()[-1])
        log2 = (tmp_path / "node1.log").read_text()
        assert "missed bars processed" in log2 and '"traded": true' in log2
        feed = [json.loads(x) for x in r.lrange(f"simpaper:{trader}:feed", 0, -1)]
        closes = [f[1] for f in feed]
        assert closes == sorted(set(closes)), "every bar exactly once, in order"
        assert all(b - a == 3_600_000_000_000 for a, b in zip(closes, closes[1:], strict=False)), "no bar missing"
        assert len(closes) > at_kill + 5
        fills = pd.read_parquet(path / "fills.parquet")
        assert fills["trade_id"].is_unique and len(fills) == r.hlen(f"simpaper:{trader}:fills") >= 4
        run = json.loads((path / "run.json").read_text())
        assert run["starts"] == 2
        rep = compare(path, tmp_path / "parity")
        assert rep.ok, rep.text()
        return path, [(tmp_path / f"node{i}.log").read_text() for i in range(len(procs))]
    finally:
        replay.stop()
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
        _clear(trader)


def test_ethereal_paper_trailing_stop_matches_the_backtest(tmp_path, eth_market):
    """Risk trailing stop (a reduce-only STOP_MARKET moved with modify_order at bar closes) and a
    take-profit: the simulated client applies the moves as the backtest does, 0 differences. (No
    slippage here: with the fixture's thin volume the slipped entry sits above the market and every
    stop is rejected, as in the backtest.)"""
    import pandas as pd

    risk = EMA_PARAMS + "\n[strategies.params.risk.stops]\ntrailing_pct = 0.0003\ntake_profit_pct = 0.001"
    path, _rep, paper, _bt = _run_parity(tmp_path, eth_market, _trader("TRL"), params=risk,
                                         venue_extra='slippage = "none"')
    orders = pd.read_parquet(path / "orders.parquet")
    stops = orders[(orders["type"].astype(str) == "STOP_MARKET")]
    assert (stops["filled_qty"].astype(float) > 0).any()
    log = "".join(p.read_text() for p in (path / "logs").glob("*"))
    assert "OrderUpdated" in log  # the trail moved at least once

def test_ethereal_paper_kill9_catches_up_from_history_and_matches_the_backtest(tmp_path, eth_market):
    """kill -9 mid-session while the replayed market goes on (candles pass while the node is down), restart:
    the missed bars come from the venue's price history and are traded, the strategies come back warm
    (stored feed + state); the session's fills, funding and final equity equal the backtest's (= an
    uninterrupted session's, test above), no fill lost or duplicated."""
    _kill_restart(tmp_path, eth_market, _trader("KIL"))


def test_ethereal_paper_kill9_restores_protective_orders(tmp_path, eth_market):
    """Risk stops (reduce-only STOP_MARKET + take-profit LIMIT placed on each entry): kill -9 while they
    rest, restart: the venue's book gives them back (reconciliation), the strategy's risk manager takes them
    back as its protective orders (one cancels the other again), they fill as in the backtest."""
    import pandas as pd

    risk = EMA_PARAMS + "\n[strategies.params.risk.stops]\nstop_loss_pct = 0.0003\ntake_profit_pct = 0.0004"

    def resting(orders: list[dict]) -> bool:
        return any(o["reduce_only"] and o["status"] == "ACCEPTED" for o in orders)

    path, logs = _kill_restart(tmp_path, eth_market, _trader("PRO"), kill_when=resting, params=risk)
    assert "paper reconciliation: " in logs[1] and '"paper reconciliation: 0 orders' not in logs[1]
    orders = pd.read_parquet(path / "orders.parquet")
    protective = orders[orders["is_reduce_only"].astype(bool)]
    assert (protective["filled_qty"].astype(float) > 0).sum() >= 2
    assert set(protective["type"].astype(str)) >= {"STOP_MARKET", "LIMIT"}


if __name__ == "__main__":
    _node_main(*sys.argv[1:5])
