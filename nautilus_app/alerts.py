"""Alerts: rule name + message -> webhooks (Slack/Discord JSON, Telegram bot API, generic JSON POST).

:class:`Alerter` is what a session calls (``alerter.fire("drawdown", "drawdown 6.1 % > 5 %", drawdown=0.061)``).
Each alert is rate limited per ``(rule, subject)`` (``min_interval_seconds``) and globally
(``max_per_hour``); suppressed alerts are counted, not queued. Delivery runs on a background thread
(a slow webhook never blocks the node), each POST with ``timeout_seconds``; every alert (sent or
suppressed, with the delivery outcome) is appended to ``alerts.jsonl`` in the session's results folder.
Webhook URLs and tokens are secrets: they are never logged or written (failures name the webhook by
kind and index only).

Payloads (what the receivers get):

| kind | body |
|---|---|
| ``slack`` | ``{"text": "<title>\\n<message>"}`` (Slack incoming webhook) |
| ``discord`` | ``{"content": "<title>\\n<message>"}`` (Discord webhook; max 2000 characters) |
| ``telegram`` | ``POST <api_base>/bot<token>/sendMessage`` ``{"chat_id": ..., "text": ..., "disable_web_page_preview": true}`` |
| ``json`` | ``{"rule", "severity", "session", "title", "message", "fields", "ts"}`` |
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from nautilus_app.live_config import AlertSettings, webhook_secret

log = logging.getLogger("nautilus_app.alerts")

SEVERITY = {"drawdown": "critical", "daily_loss": "critical", "stale_feed": "warning", "disconnect": "warning",
            "reconnect": "info", "order_rejected": "warning", "order_denied": "warning",
            "strategy_exception": "critical", "liquidation_risk": "critical", "funding_spike": "warning",
            "session_stopped": "info", "kill_switch": "critical", "reconciliation": "critical", "test": "info"}


def payload(kind: str, alert: dict, chat_id: str | None = None) -> dict:
    """The JSON body a webhook of ``kind`` receives for ``alert`` (see the module docstring)."""
    text = f"[{alert['severity'].upper()}] {alert['title']}\n{alert['message']}"
    if kind == "slack":
        return {"text": text}
    if kind == "discord":
        return {"content": text[:2000]}
    if kind == "telegram":
        return {"chat_id": chat_id, "text": text[:4096], "disable_web_page_preview": True}
    return {k: alert[k] for k in ("rule", "severity", "session", "title", "message", "fields", "ts")}


class Alerter:
    """Rate-limited alert delivery for one session.

    Args:
        settings: ``[live.alerts]``.
        session: Name in every alert (run id or trader id).
        log_path: ``alerts.jsonl`` (appended), or None.
        env: Environment for the webhook secrets (default ``os.environ``).

    Raises:
        LiveConfigError: a webhook's secret is missing (at construction, not at the first alert).
    """

    def __init__(self, settings: AlertSettings, session: str, log_path: Path | None = None,
                 env: dict[str, str] | None = None, clock: Any = time.monotonic) -> None:
        self.settings = settings
        self.session = session
        self.log_path = log_path
        self.clock = clock
        self.targets: list[tuple[str, str, str | None]] = []  # kind, url, chat id
        self._secrets: list[str] = []
        for w in settings.webhooks:
            url, token = webhook_secret(w, env)
            self.targets.append((w.kind, url, w.chat_id))
            self._secrets += [url] + ([token] if token else [])
        self._last: dict[tuple[str, str], float] = {}
        self._hour: list[float] = []
        self.sent = 0
        self.suppressed = 0
        self.failed = 0
        self.history: list[dict] = []
        self._q: queue.Queue = queue.Queue()
        self._lock = threading.RLock()  # _record is called with it held (fire -> suppressed)
        self._thread = threading.Thread(target=self._worker, name="alerts", daemon=True)
        self._thread.start()

    def secrets(self) -> list[str]:
        """Webhook URLs and tokens (for the keys-never-written checks)."""
        return list(self._secrets)

    def fire(self, rule: str, message: str, *, subject: str = "", title: str | None = None, force: bool = False,
             **fields: Any) -> bool:
        """Queue an alert unless the rule is disabled or rate limited. Returns True if queued."""
        if rule != "test" and rule not in self.settings.rules:
            return False
        now = self.clock()
        alert = {"rule": rule, "severity": SEVERITY.get(rule, "warning"), "session": self.session,
                 "title": title or f"{self.session}: {rule.replace('_', ' ')}", "message": message,
                 "fields": {k: (v if isinstance(v, (int, float, str, bool)) or v is None else str(v))
                            for k, v in fields.items()},
                 "ts": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")}
        with self._lock:
            key = (rule, subject)
            self._hour = [t for t in self._hour if now - t < 3600]
            last = self._last.get(key)
            limited = (last is not None and now - last < self.settings.min_interval_seconds) or \
                len(self._hour) >= self.settings.max_per_hour
            if limited and not force:
                self.suppressed += 1
                self._record({**alert, "delivered": "suppressed (rate limit)"})
                return False
            self._last[key] = now
            self._hour.append(now)
        self._q.put(alert)
        return True

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued alert was delivered (or failed). Returns False on timeout."""
        t_end = time.monotonic() + timeout
        while time.monotonic() < t_end:
            if self._q.unfinished_tasks == 0:
                return True
            time.sleep(0.02)
        return False

    # ---- delivery ------------------------------------------------------------------------
    def _worker(self) -> None:
        while True:
            alert = self._q.get()
            try:
                outcomes = [self._post(alert, i, kind, url, chat) for i, (kind, url, chat) in enumerate(self.targets)]
                self._record({**alert, "delivered": outcomes or ["no webhooks configured"]})
            except Exception as e:  # noqa: BLE001 - an alert must never take the worker down
                log.error("alert delivery failed: %s", type(e).__name__)
            finally:
                self._q.task_done()

    def _post(self, alert: dict, i: int, kind: str, url: str, chat: str | None) -> str:
        """POST one alert to one webhook; the outcome names the webhook by kind and index, never its URL."""
        try:
            status = _send(url, payload(kind, alert, chat), self.settings.timeout_seconds)
            self.sent += 1
            return f"{kind}[{i}]: HTTP {status}"
        except urllib.error.HTTPError as e:
            self.failed += 1
            log.warning("alert webhook %s[%d] answered HTTP %d", kind, i, e.code)
            return f"{kind}[{i}]: HTTP {e.code}"
        except (urllib.error.URLError, OSError, TimeoutError) as e:
            self.failed += 1
            reason = type(getattr(e, "reason", e)).__name__
            log.warning("alert webhook %s[%d] not reached: %s", kind, i, reason)
            return f"{kind}[{i}]: failed ({reason})"

    def _record(self, alert: dict) -> None:
        with self._lock:
            self.history.append(alert)
            del self.history[:-500]
        if self.log_path is not None:
            try:
                self.log_path.parent.mkdir(parents=True, exist_ok=True)
                with self.log_path.open("a") as fh:
                    fh.write(json.dumps(alert, default=str) + "\n")
            except OSError as e:
                log.error("alerts.jsonl not written: %s", e.strerror)


def _send(url: str, body: dict, timeout: float) -> int:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", "User-Agent": "nautilus-app-alerts"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - configured webhook
        return resp.status
