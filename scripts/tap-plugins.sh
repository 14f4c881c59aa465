#!/usr/bin/env bash
# tap's test class is generated from the plugin list in .taprc, which swaps @tapjs/typescript (ts-node)
# for tsx (test/tap-plugin-tsx); `npm ci` brings the default class. `tap build` would look each plugin
# up in the npm registry, so this runs tap's generator directly, when the class is not ours yet.
set -eu
cd "$(dirname "$0")/.."
grep -q acheron-tap-plugin-tsx node_modules/@tapjs/test/test-built/dist/esm/index.js 2>/dev/null && exit 0
echo "# generating tap's test class for the plugins in .taprc"
# shellcheck disable=SC2046 # one plugin name per word
node node_modules/@tapjs/test/dist/esm/build.mjs $(npx tap plugin list) >/dev/null
