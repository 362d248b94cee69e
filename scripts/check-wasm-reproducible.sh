#!/usr/bin/env bash
# Rebuilds every wasm variant into a scratch folder and fails if they differ from the committed wasm/ bytes:
# the committed artefacts must be exactly what the source builds to (reproducible builds).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
FRESH="$ROOT/dist/wasm-fresh"
rm -rf "$FRESH"
bash "$ROOT/scripts/build-wasm.sh" "$FRESH"
status=0
for f in "$FRESH"/*.wasm; do
  name=$(basename "$f")
  if cmp -s "$f" "$ROOT/wasm/$name"; then
    echo "reproducible: wasm/$name ($(sha256sum "$f" | cut -c1-16))"
  else
    echo "NOT REPRODUCIBLE: wasm/$name differs from a fresh build of the source; run 'deno task build:wasm' and commit" >&2
    status=1
  fi
done
exit $status
