#!/usr/bin/env bash
# Screenshots of a running `voxemoset build` in the Prefect UI, with headless Chromium (docs/screenshots/):
# the build flow page while the gates stage runs, the gates stage's progress artifact, and the build's summary.
# Usage: bash scripts/screenshot_build.sh CONFIG OUT [PORT]   (a demo's config works: runs/demo/demo.yaml)
set -euo pipefail
cd "$(dirname "$0")/.."
config=$(realpath "$1"); out=$(realpath -m "$2"); port=${3:-4299}
shots=$PWD/docs/screenshots; mkdir -p "$shots"
home=$(mktemp -d); export PREFECT_HOME=$home PREFECT_SERVER_ANALYTICS_ENABLED=false
export PREFECT_API_URL=http://127.0.0.1:$port/api PREFECT_UI_API_URL=http://127.0.0.1:$port/api
.venv/bin/prefect server start --host 127.0.0.1 --port "$port" > "$home/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 90); do curl -sf "$PREFECT_API_URL/health" >/dev/null && break; sleep 1; done
.venv/bin/voxemoset build -c "$config" --out "$out" > "$home/build.log" 2>&1 &
build=$!
for _ in $(seq 900); do  # until the gates stage has finished one shard
    [ "$(ls "$out/stages/gates/_done" 2>/dev/null | wc -l)" -ge 1 ] && break; sleep 1
done
api() { curl -s -X POST "$PREFECT_API_URL/$1/filter" -H 'content-type: application/json' -d "$2"; }
first() { python3 -c "import json, sys; r = [x for x in json.load(sys.stdin) if (x.get('description') or '').startswith('$1')]; print(r[-1]['id'])"; }
shoot() { chromium --headless=new --no-sandbox --disable-gpu --hide-scrollbars --window-size=1600,1100 \
    --virtual-time-budget=20000 --screenshot="$shots/$1" "http://127.0.0.1:$port/$2" 2>/dev/null; }
run=$(api flow_runs '{"flows":{"name":{"any_":["build"]}},"flow_runs":{"state":{"type":{"any_":["RUNNING"]}}}}' | first "")
shoot build-flow-running.png "runs/flow-run/$run"
shoot gates-progress-artifact.png "artifacts/artifact/$(api artifacts '{"artifacts":{"type":{"any_":["progress"]}}}' | first gates:)"
wait "$build"
shoot build-summary-artifact.png "artifacts/artifact/$(api artifacts '{"artifacts":{"key":{"any_":["build-summary"]}}}' | first "")"
echo "screenshots: $shots (build log: $home/build.log)"
