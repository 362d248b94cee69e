#!/usr/bin/env bash
# The whole test suite (`deno task test`): host Rust unit tests, the TS tests in Deno, Bun and Node 20 (an esbuild
# bundle per test file, since Node 20 cannot run .ts) against the wasm build, then deno check/lint/fmt and
# `deno publish --dry-run`. Every step runs even when an earlier one fails; the last line sums all runners:
# `N passed, N failed`.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export PATH="$ROOT/.tools/bin:$PATH" DENO_NO_UPDATE_CHECK=1 NO_COLOR=1 FORCE_COLOR=0
LOG=$(mktemp -d)
PASSED=0
FAILED=0

count() { # name passed failed
  echo "== $1: $2 passed, $3 failed"
  PASSED=$((PASSED + $2))
  FAILED=$((FAILED + $3))
}
num() { [[ "$1" =~ ^[0-9]+$ ]] && echo "$1" || echo 0; }

echo "== cargo test (host)"
(cd crates/pocket_core && RUSTC=/usr/bin/rustc /usr/bin/cargo test -q 2>&1) | tee "$LOG/cargo"
rc=${PIPESTATUS[0]}
p=$(grep -o '[0-9]* passed' "$LOG/cargo" | awk '{s+=$1} END {print s+0}')
f=$(grep -o '[0-9]* failed' "$LOG/cargo" | awk '{s+=$1} END {print s+0}')
[ "$rc" != 0 ] && [ "$f" = 0 ] && f=1
count cargo "$p" "$f"

echo "== deno test"
deno test -A --quiet tests/ 2>&1 | tee "$LOG/deno"
rc=${PIPESTATUS[0]}
line=$(sed 's/\x1b\[[0-9;]*m//g' "$LOG/deno" | grep -E '^(ok|FAILED) \|' | tail -1)
p=$(num "$(echo "$line" | sed -n 's/.*| \([0-9]*\) passed.*/\1/p')")
s=$(num "$(echo "$line" | sed -n 's/.*(\([0-9]*\) steps).*/\1/p')")
f=$(num "$(echo "$line" | sed -n 's/.*| \([0-9]*\) failed.*/\1/p')")
[ "$rc" != 0 ] && [ "$f" = 0 ] && f=1
count deno "$((p + s))" "$f"

echo "== bun test"
# Full-size tests take longer than bun's 5 s default on a busy machine.
bun test --timeout 120000 ./tests/ 2>&1 | tee "$LOG/bun" | grep -vE '^\s*\(pass\)' 
rc=${PIPESTATUS[0]}
p=$(num "$(grep -E '^ *[0-9]+ pass$' "$LOG/bun" | tail -1 | awk '{print $1}')")
f=$(num "$(grep -E '^ *[0-9]+ fail$' "$LOG/bun" | tail -1 | awk '{print $1}')")
[ "$rc" != 0 ] && [ "$f" = 0 ] && f=1
count bun "$p" "$f"

echo "== node test (esbuild bundles)"
rm -rf dist/node && mkdir -p dist/node
bundle_ok=1
# The lazily imported audio codecs stay external: the bundles load them from node_modules as npm users do (their
# `npm:` twins, taken only in Deno, are left unresolved).
codecs=(--external:'npm:*' --external:'@wasm-audio-decoders/*' --external:mpg123-decoder --external:ogg-opus-decoder
  --external:@breezystack/lamejs --external:@evan/opus)
for t in tests/*/*.test.ts; do
  out="dist/node/$(basename "$(dirname "$t")")_$(basename "${t%.ts}").mjs"
  node_modules/.bin/esbuild "$t" --bundle --format=esm --platform=node --target=node20 "${codecs[@]}" \
    --outfile="$out" --log-level=warning || bundle_ok=0
done
node --test --test-reporter=tap dist/node/ 2>&1 | tee "$LOG/node" | grep -E '^# (tests|pass|fail)|^not ok' 
rc=${PIPESTATUS[0]}
p=$(num "$(sed -n 's/^# pass \([0-9]*\)/\1/p' "$LOG/node" | tail -1)")
f=$(num "$(sed -n 's/^# fail \([0-9]*\)/\1/p' "$LOG/node" | tail -1)")
{ [ "$rc" != 0 ] || [ "$bundle_ok" = 0 ]; } && [ "$f" = 0 ] && f=1
count node "$p" "$f"

# Node 20 validates relaxed SIMD only behind a flag: run the wasm-core tests again with it, so the relaxed variant
# is tested in Node too (the run above covers what Node users get by default: the baseline variant).
echo "== node test, relaxed SIMD enabled (wasm core tests)"
node --experimental-wasm-relaxed-simd --test --test-reporter=tap dist/node/runtime_*.mjs dist/node/mimi_*.mjs \
  dist/node/voice_clone_encoder*.mjs \
  dist/node/flow_lm_*.mjs 2>&1 | tee "$LOG/node-relaxed" | grep -E '^# (tests|pass|fail)|^not ok'
rc=${PIPESTATUS[0]}
p=$(num "$(sed -n 's/^# pass \([0-9]*\)/\1/p' "$LOG/node-relaxed" | tail -1)")
f=$(num "$(sed -n 's/^# fail \([0-9]*\)/\1/p' "$LOG/node-relaxed" | tail -1)")
[ "$rc" != 0 ] && [ "$f" = 0 ] && f=1
count "node (relaxed)" "$p" "$f"

for step in "deno check mod.ts src/ bench/ tests/ examples/" "deno lint" "deno fmt --check" \
  "deno doc --lint mod.ts src/text/mod.ts" \
  "deno publish --dry-run --allow-dirty"; do
  echo "== $step"
  if $step >"$LOG/step" 2>&1; then count "$step" 1 0; else cat "$LOG/step"; count "$step" 0 1; fi
done
rm -rf "$LOG"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
