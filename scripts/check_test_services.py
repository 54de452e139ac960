"""Check what ``make test`` needs besides Python: PostgreSQL, Redis and Debian's Chromium (README, Tests).

Run by ``make test`` before pytest; exit 0 when everything answers, else 1 with one line per missing service
saying what was tried and how to provide it. Nothing is started or changed.

* PostgreSQL at ``127.0.0.1:5432``, user ``postgres`` without a password, database ``test`` (the research
  registry and Ray tests create and drop their own databases from there);
* Redis at ``127.0.0.1:6379`` (paper/live tests);
* Chromium at ``$CHROMIUM`` (default ``/usr/bin/chromium``) for the browser tests (installed by ``.ci/run``).

Set ``SKIP_SERVICE_CHECK=1`` to skip this check (pytest will then fail in the tests that need a service).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379


def check_postgres() -> str | None:
    """None if PostgreSQL answers a query at :data:`PG_URL`, else the problem."""
    import psycopg

    try:
        with psycopg.connect(PG_URL, connect_timeout=5) as conn:
            conn.execute("SELECT 1").fetchone()
    except Exception as e:  # noqa: BLE001 - any failure is reported the same way
        return (f"PostgreSQL: cannot query {PG_URL} ({type(e).__name__}: {str(e).strip().splitlines()[0] if str(e) else ''}); "
                "start a local server (e.g. `service postgresql start`) that accepts user postgres without a "
                "password on 127.0.0.1:5432 and has a database `test` (`createdb -U postgres test`)")
    return None


def check_redis() -> str | None:
    """None if Redis answers PING at 127.0.0.1:6379, else the problem."""
    import redis

    try:
        redis.Redis(host=REDIS_HOST, port=REDIS_PORT, socket_connect_timeout=5, socket_timeout=5).ping()
    except Exception as e:  # noqa: BLE001
        return (f"Redis: no answer to PING at {REDIS_HOST}:{REDIS_PORT} ({type(e).__name__}: {e}); "
                "start a local server (e.g. `service redis-server start` or `redis-server --daemonize yes`)")
    return None


def check_chromium() -> str | None:
    """None if the system Chromium used by the browser tests exists, else the problem."""
    path = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    if Path(path).exists() or shutil.which("chromium"):
        return None
    return (f"Chromium: {path} not found and no `chromium` on PATH; install Debian's chromium and "
            "chromium-driver (`.ci/run` does: apt-get install chromium chromium-driver) or set CHROMIUM=/path")


def main() -> int:
    if os.environ.get("SKIP_SERVICE_CHECK") == "1":
        print("check_test_services: skipped (SKIP_SERVICE_CHECK=1)")
        return 0
    problems = [p for p in (check_postgres(), check_redis(), check_chromium()) if p]
    if not problems:
        print("check_test_services: PostgreSQL, Redis and Chromium are available")
        return 0
    print("make test needs services that are not available:", file=sys.stderr)
    for p in problems:
        print(f"  - {p}", file=sys.stderr)
    print("(README.md, Tests; SKIP_SERVICE_CHECK=1 runs pytest anyway)", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
