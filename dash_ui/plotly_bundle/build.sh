#!/usr/bin/env bash
# Rebuild dash_ui/static/plotly-app.min.js: plotly.js with only the trace types the app draws
# (scatter, bar, heatmap, candlestick, waterfall), 1.2 MB instead of 4.8 MB. The plotly.js version must
# equal the one bundled with the installed plotly Python package (figures are built by plotly.py).
# Needs node + npm (registry access); run from anywhere. See docs/dash.md.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
ver="$("$repo/.venv/bin/python" -c 'from plotly.offline import get_plotlyjs_version as g; print(g())')"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "$here/entry.js" "$work/"
cd "$work"
npm install --no-audit --no-fund --silent "plotly.js@$ver" esbuild@0.25.10
{
  printf '/**\n* plotly.js v%s partial bundle (core + bar, heatmap, candlestick, waterfall) for nautilus-app\n' "$ver"
  printf '* Copyright 2012-2026, Plotly, Inc. All rights reserved. Licensed under the MIT license.\n'
  printf '* Built by dash_ui/plotly_bundle/build.sh with esbuild 0.25.10.\n*/\n'
  ./node_modules/.bin/esbuild entry.js --bundle --minify --format=iife --global-name=Plotly --log-level=error --define:global=window \
    --loader:.css=empty
} > "$repo/dash_ui/static/plotly-app.min.js.tmp"
mv "$repo/dash_ui/static/plotly-app.min.js.tmp" "$repo/dash_ui/static/plotly-app.min.js"
echo "wrote dash_ui/static/plotly-app.min.js (plotly.js $ver)"
