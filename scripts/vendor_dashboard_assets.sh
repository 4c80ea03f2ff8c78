#!/usr/bin/env bash
# Refresh uPlot (the dashboard's charts) under app/dashboard/static/vendor/uplot from its
# npm package: the server serves it itself, so the charts work offline and need no CDN.
# Needs npm. Usage: bash scripts/vendor_dashboard_assets.sh [UPLOT_VERSION]
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:-1.6.32}
target=app/dashboard/static/vendor/uplot
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm pack --silent "uplot@$version" >/dev/null)
tar xzf "$work/uplot-$version.tgz" -C "$work"
rm -rf "$target"
mkdir -p "$target"
cp "$work/package/dist/uPlot.iife.min.js" "$work/package/dist/uPlot.min.css" \
    "$work/package/LICENSE" "$target/"
printf 'uplot %s\n' "$version" > "$target/VERSION"
