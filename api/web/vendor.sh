#!/usr/bin/env bash
# Re-fetch the dashboard's vendored JavaScript from the npm registry (build time only; the app serves
# the copies under api/web/static/vendor/ and never loads anything from a CDN). Run: make web-vendor
set -euo pipefail
UPLOT_VERSION=1.6.32
UPLOT_SHA512="$(cat "$(dirname "$0")/static/vendor/uplot/SHA512")"
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
npm pack --silent "uplot@${UPLOT_VERSION}" >/dev/null
got="$(sha512sum "uplot-${UPLOT_VERSION}.tgz" | cut -d' ' -f1)"
if [ "$got" != "$UPLOT_SHA512" ]; then
  echo "uplot-${UPLOT_VERSION}.tgz: sha512 $got, expected $UPLOT_SHA512" >&2
  exit 1
fi
tar xzf "uplot-${UPLOT_VERSION}.tgz"
dest="$here/static/vendor/uplot"
cp package/dist/uPlot.iife.min.js package/dist/uPlot.min.css package/LICENSE "$dest/"
echo "uPlot ${UPLOT_VERSION} → $dest"
