"""``/api/openapi.json``, ``/api/health`` and ``/api/strategies``: the API's own description and the
strategy catalog (registered strategies with their parameters and defaults)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Blueprint, jsonify

from dash_ui.api.catalog import symbols
from dash_ui.api.common import ApiError

if TYPE_CHECKING:
    from dash_ui.context import AppContext


def register(bp: Blueprint, ctx: AppContext) -> None:
    """Add the description and strategy-catalog routes to the ``api`` blueprint."""

    @bp.get("/openapi.json")
    def openapi_doc():
        from dash_ui.openapi import openapi_document

        ids = ctx.store.run_ids()
        syms = symbols(ctx)
        return jsonify(openapi_document(ids[0] if ids else None, syms[0]["instrument_id"] if syms else None))

    @bp.get("/health")
    def health():
        return jsonify({"status": "ok", "results": str(ctx.store.root), "catalog": str(ctx.catalog_root)})

    @bp.get("/strategies")
    def strategies():
        from nautilus_app.strategy_loader import REQUIRED, StrategyLoadError, discover_strategies

        try:
            cat = discover_strategies()
        except StrategyLoadError as e:
            raise ApiError(500, str(e), "strategies") from e
        return jsonify({n: {"origin": ref.origin, "strategy_path": ref.strategy_path, "doc": ref.doc(),
                            "parameters": {k: None if f.default is REQUIRED else f.default
                                           for k, f in ref.parameters().items()},
                            "types": {k: f.type_name() for k, f in ref.parameters().items()}}
                        for n, ref in cat.strategies.items()})
