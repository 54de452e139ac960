"""History import (instruments, funding, price bars, oracle marks) into the catalog, the CLI, and a
backtest on the imported Ethereal data that pays hourly funding (amounts recomputed here)."""

from __future__ import annotations

import textwrap
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from nautilus_trader.model import BarType, InstrumentId, NautilusDataType
from nautilus_trader.persistence import ParquetDataCatalog

from adapters.ethereal.history import import_ethereal_history
from catalog.errors import DataImportError
from nautilus_app.testkit.ethereal_mock import MockEtherealServer
from nautilus_app.testkit.ethereal_mock.testkit import FIXTURES, fixture

IID = "BTCUSD-PERP.ETHEREAL"
HOUR_NS = 3_600_000_000_000


@pytest.fixture(scope="module")
def server():
    srv = MockEtherealServer(FIXTURES).start()
    yield srv
    srv.stop()


def test_import_matches_the_venue_payloads(server, tmp_path):
    rep = import_ethereal_history(tmp_path, tickers=["BTCUSD", "ETHUSD"], start="2026-01-01", end="2026-01-03",
                                  interval="1h", kinds=["bars", "funding", "mark"], network="testnet",
                                  rest_url=server.rest_url)
    assert rep.stats[f"bars/{IID}-1-HOUR-LAST-EXTERNAL"].rows_written == 72
    cat = ParquetDataCatalog(str(tmp_path))
    # bars: close-time stamps and exact prices, recomputed from the TradingView payload with pandas
    tv = pd.DataFrame(fixture("tv_history.json")["BTCUSD-Perp"]["last"]["60"])
    bars = cat.query_bars([f"{IID}-1-HOUR-LAST-EXTERNAL"])
    assert [b.ts_event for b in bars] == list((tv["t"] + 3600) * 1_000_000_000)
    assert [float(b.close) for b in bars] == list(tv["c"]) and [float(b.volume) for b in bars] == list(tv["v"])
    assert bars[0].bar_type == BarType.from_str(f"{IID}-1-HOUR-LAST-EXTERNAL")
    # funding: snapped to the hour, interval 60 min, next_funding = ts, exact rates
    fund = fixture("funding.json")["BTCUSD"]
    rows = cat.query(NautilusDataType.FundingRateUpdate, identifiers=[IID])
    assert [r.ts_event for r in rows] == [round(f["createdAt"] / 3_600_000) * HOUR_NS for f in fund]
    assert [r.rate for r in rows] == [Decimal(f["fundingRate1h"]) for f in fund]
    assert {r.interval for r in rows} == {60} and all(r.next_funding_ns == r.ts_event for r in rows)
    marks = cat.query(NautilusDataType.MarkPriceUpdate, identifiers=[IID])
    oracle = fixture("tv_history.json")["BTCUSD-Perp"]["oracle"]["60"]
    assert [float(m.value) for m in marks] == oracle["c"]
    inst = cat.instruments(instrument_ids=[IID])[0]
    assert inst.id == InstrumentId.from_str(IID) and inst.info["taker_fee"] == "0.0003"
    # idempotent
    rep2 = import_ethereal_history(tmp_path, tickers=["BTCUSD"], start="2026-01-01", end="2026-01-03",
                                   interval="1h", kinds=["bars", "funding", "mark"], network="testnet",
                                   rest_url=server.rest_url)
    assert rep2.total("bars").rows_written == 0 and rep2.total("funding_rates").rows_skipped == 72


def test_bad_history_is_refused_with_a_clear_error(server, tmp_path):
    def corrupt(v):
        v.tv["BTCUSD-Perp"]["last"]["60"]["c"][5] = 95000.5  # finer than the tick size 1
    server.call(corrupt, server.venue)
    try:
        with pytest.raises(DataImportError, match=r"last-price/history.*row 6: column 'c': value .*95000.5.* needs 1 decimals"):
            import_ethereal_history(tmp_path, tickers=["BTCUSD"], start="2026-01-01", end="2026-01-03",
                                    interval="1h", kinds=["bars"], network="testnet", rest_url=server.rest_url)
        assert not list(tmp_path.glob("data/bars/*/*.parquet"))  # nothing half-written
    finally:
        server.call(lambda v: v.tv.update(fixture("tv_history.json")), server.venue)
    with pytest.raises(DataImportError, match="no active perpetual for \\['SOLUSD'\\]"):
        import_ethereal_history(tmp_path, tickers=["SOLUSD"], start="2026-01-01", end="2026-01-03",
                                network="testnet", rest_url=server.rest_url)
    with pytest.raises(DataImportError, match="interval '7m' not supported"):
        import_ethereal_history(tmp_path, tickers=["BTCUSD"], start="2026-01-01", end="2026-01-02", interval="7m")


def test_cli_import_ethereal(server, tmp_path, capsys):
    from nautilus_app.cli import main

    code = main(["import-ethereal", "--catalog", str(tmp_path), "--network", "testnet", "--rest-url", server.rest_url,
                 "--tickers", "ETHUSD", "--start", "2026-01-01", "--end", "2026-01-01", "--kinds", "funding"])
    out = capsys.readouterr().out
    assert code == 0 and "funding_rates/ETHUSD-PERP.ETHEREAL: read 24, written 24" in out  # 1 day of 72 h
    code = main(["import-ethereal", "--catalog", str(tmp_path), "--rest-url", server.rest_url, "--tickers", "ETHUSD",
                 "--start", "2026-01-02", "--end", "2026-01-01"])
    assert code == 2 and "end 2026-01-01 is before start" in capsys.readouterr().err


def test_backtest_on_ethereal_data_pays_hourly_funding(server, tmp_path):
    from nautilus_app.backtest import run_backtest
    from nautilus_app.config import load_config

    import_ethereal_history(tmp_path / "cat", tickers=["BTCUSD"], start="2026-01-01", end="2026-01-03",
                            interval="1h", kinds=["bars", "funding", "mark"], network="testnet",
                            rest_url=server.rest_url)
    cfg = tmp_path / "eth.toml"
    cfg.write_text(textwrap.dedent(f'''
        name = "ethereal_funding"
        start = "2026-01-01"
        end = "2026-01-04"
        catalog = "{tmp_path / 'cat'}"
        bar_types = ["{IID}-1-HOUR-LAST-EXTERNAL"]
        [[venues]]
        name = "ETHEREAL"
        account_type = "MARGIN"
        starting_balances = ["100000 USDT"]
        default_leverage = 2
        maker_fee = 0.0001
        taker_fee = 0.0003
        [[venues.brackets."{IID}"]]
        effective_from = "2020-01-01"
        tiers = [[1e12, 0.025, 20]]
        [[strategies]]
        name = "buy_and_hold"
        [strategies.params]
        instrument_id = "{IID}"
        bar_type = "{IID}-1-HOUR-LAST-EXTERNAL"
        position_fraction = 0.5
    '''))
    out = run_backtest(load_config(cfg), results_root=tmp_path / "res", progress=False)
    funding = pd.read_parquet(out.results_path / "funding.parquet")
    fills = pd.read_parquet(out.results_path / "fills.parquet")
    # independent recomputation: each hour a long position pays qty x mark(t) x rate(t)
    qty_col = next(c for c in ("last_qty", "quantity", "qty") if c in fills.columns)
    entry = fills.iloc[0]
    qty = float(entry[qty_col])
    t_entry = pd.Timestamp(entry[next(c for c in ("ts_event", "ts", "ts_last") if c in fills.columns)])
    rates = {round(f["createdAt"] / 3_600_000) * HOUR_NS: float(f["fundingRate1h"]) for f in fixture("funding.json")["BTCUSD"]}
    oracle = fixture("tv_history.json")["BTCUSD-Perp"]["oracle"]["60"]
    mark = {(t + 3600) * 1_000_000_000: c for t, c in zip(oracle["t"], oracle["c"], strict=True)}
    ts = pd.to_datetime(funding["ts"], utc=True).astype("int64").to_numpy()
    expected = np.array([-qty * mark[t] * rates[t] for t in ts])
    assert len(funding) >= 60 and (ts % HOUR_NS == 0).all() and (np.diff(ts) == HOUR_NS).all()
    assert ts[0] >= t_entry.value
    np.testing.assert_allclose(funding["amount"].to_numpy(), expected, rtol=1e-6, atol=1e-6)
    assert out.metrics["funding_paid_usdt"] == pytest.approx(-expected.sum(), rel=1e-6)
