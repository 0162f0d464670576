#!/usr/bin/env bash
# Rebuild the point of sale's vendored JavaScript from npm (see docs/POS.md).
#
#   scripts/build_pos_assets.sh
#
# Installs the exact versions of web/pos/package-lock.json (npm ci, no install scripts run) and
# copies what is used, with each package's license, into:
#   src/offcash/pos/static/vendor/zxing-wasm/  the camera's QR decoder (zxing-cpp in WebAssembly)
#   tests/pos/vendor/axe-core/                 the accessibility checker the browser tests inject
# The copies are committed, so installing offcash (pip) needs neither npm nor the internet.
set -euo pipefail
cd "$(dirname "$0")/.."
web=web/pos
(cd "$web" && npm ci --ignore-scripts --no-audit --no-fund)
modules="$web/node_modules"

zx=src/offcash/pos/static/vendor/zxing-wasm
rm -rf "$zx" && mkdir -p "$zx"
cp "$modules/zxing-wasm/dist/iife/reader/index.js" "$zx/zxing-reader.js"
cp "$modules/zxing-wasm/dist/reader/zxing_reader.wasm" "$zx/zxing_reader.wasm"
cp "$modules/zxing-wasm/LICENSE" "$zx/LICENSE"
node -e 'const p=require(process.argv[1]); console.log(`${p.name} ${p.version} (${p.license}) from npm`)' \
    "$PWD/$modules/zxing-wasm/package.json" > "$zx/VERSION"

axe=tests/pos/vendor/axe-core
rm -rf "$axe" && mkdir -p "$axe"
cp "$modules/axe-core/axe.min.js" "$axe/axe.min.js"
cp "$modules/axe-core/LICENSE" "$axe/LICENSE"
node -e 'const p=require(process.argv[1]); console.log(`${p.name} ${p.version} (${p.license}) from npm`)' \
    "$PWD/$modules/axe-core/package.json" > "$axe/VERSION"
echo "vendored: $(cat "$zx/VERSION"); $(cat "$axe/VERSION")"
