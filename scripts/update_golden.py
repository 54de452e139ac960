"""Re-run the reference configs and rewrite tests/golden/*.json (after an intended results change).

Usage: ``python scripts/update_golden.py``; then explain the changed numbers in the commit message.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from nautilus_app.golden import GOLDEN_DIR, REFERENCE_CONFIGS, import_reference_data, run_reference


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        catalog = Path(tmp) / "catalog"
        import_reference_data(catalog)
        for name in REFERENCE_CONFIGS:
            digest, metrics = run_reference(name, catalog, Path(tmp) / "results")
            path = GOLDEN_DIR / f"{name}.json"
            path.write_text(json.dumps({"results_digest": digest, "metrics": metrics}, indent=2, default=str) + "\n")
            print(f"{path}: {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
