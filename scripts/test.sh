#!/usr/bin/env bash
# The test command: strict type-check, generated types up to date, the formatting, every tap test; the last line
# is `N passed, N failed` (tap's own summary is not one CI reads).
set -u
cd "$(dirname "$0")/.."
failed_steps=()

# The checks before tap are independent and single-threaded: run side by side (two cores), each one's
# output shown whole, in this order.
checks=$(mktemp -d)
trap 'rm -rf "$checks"' EXIT
check() { # name, then the command
  local name=$1
  shift
  { echo "# $name"; "$@"; } >"$checks/$name.out" 2>&1 && touch "$checks/$name.ok"
}
check "tsc --noEmit" npx tsc --noEmit -p tsconfig.json &
# bench/*.mjs against the built declarations (dist/*.d.ts): `make bench` is not run by the tests, and a
# method it calls that went away or became private would otherwise show only when someone measures.
check "tsc -p tsconfig.bench.json" npx tsc -p tsconfig.bench.json &
check "generated types up to date" node scripts/gen-types.mjs --check &
check "formatted as prettier formats it (npm run format)" npm run -s format:check &
wait
for name in "tsc --noEmit" "tsc -p tsconfig.bench.json" "generated types up to date" "formatted as prettier formats it (npm run format)"; do
  cat "$checks/$name.out"
  [ -e "$checks/$name.ok" ] || failed_steps+=("${name%% (*}")
done
bash scripts/tap-plugins.sh || failed_steps+=("tap-plugins")

log=$(mktemp)
# Tests start python3 hundreds of times; a version manager's shim (pyenv) costs a shell script and
# up to a second per start on a busy machine. The interpreter the shim picks, without the shim:
pybin=$(mktemp -d)
trap 'rm -rf "$checks" "$log" "$pybin"' EXIT
if py=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null) && [ -x "$py" ]; then
  ln -s "$py" "$pybin/python3" && export PATH="$pybin:$PATH"
fi
npx tap --reporter=tap "$@" 2>&1 | tee "$log"
tap_status=${PIPESTATUS[0]}

# Count assertions from every file's TAP stream (nested "ok"/"not ok" lines, skipping subtest summaries);
# -a: a test may echo a driver's raw bytes, and grep would otherwise stop at them.
pass=$(grep -acE '^\s*ok [0-9]+ ' "$log" || true)
fail=$(grep -aE '^\s*not ok [0-9]+ ' "$log" | grep -vc '# TODO' || true)
subtests=$(grep -acE '^\s*# Subtest' "$log" || true)
pass=$((pass - subtests > 0 ? pass - subtests : pass))
# CI shows only the end of the log: name each failed assertion there, with its file and a line of its diagnosis.
if [ "$fail" -gt 0 ]; then
  echo "# failed assertions (file: assertion):"
  # With the top-level test of each (a unit shard's file is named in its `at:` lines, below in the log).
  awk '/^# Subtest: /{file=substr($0, 12); test=""} /^    # Subtest: /{test=substr($0, 16)}
    /^[[:space:]]*not ok [0-9]+ / && !/# TODO/{top=($0 ~ /^not ok/); sub(/^[[:space:]]*/, ""); print "#   " file (top || test == "" ? "" : " > " test) ": " $0}' "$log" | head -n 12
fi
[ ${#failed_steps[@]} -eq 0 ] || { printf '# failed step: %s\n' "${failed_steps[@]}"; fail=$((fail + ${#failed_steps[@]})); }
[ "$tap_status" -eq 0 ] || [ "$fail" -gt 0 ] || fail=1
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
