#!/usr/bin/env bash
# Print the path of a working Python 3.13 interpreter: $PYTHON if set, python3.13 on PATH, or pyenv's.
set -euo pipefail
for cand in "${PYTHON:-}" python3.13 "$(command -v pyenv >/dev/null 2>&1 && pyenv root)"/versions/3.13*/bin/python3.13 \
            "$HOME"/.pyenv/versions/3.13*/bin/python3.13 /usr/local/bin/python3.13 /usr/bin/python3.13; do
  [ -n "$cand" ] || continue
  if "$cand" -c 'import sys; assert sys.version_info[:2] == (3, 13)' >/dev/null 2>&1; then
    command -v "$cand" 2>/dev/null || echo "$cand"
    exit 0
  fi
done
echo "error: Python 3.13 not found (set PYTHON=/path/to/python3.13 or install it with pyenv)" >&2
exit 1
