#!/usr/bin/env bash
# Screenshots of optuna-dashboard on a study made by `jointnas run`, in headless Chromium
# (Debian: apt-get install chromium). Usage: bash benchmarks/dashboard_screenshots.sh STORAGE_URL
set -euo pipefail
storage="${1:-sqlite:///jointnas.db}"
out="$(dirname "$0")/results/dashboard"
mkdir -p "$out"
jointnas dashboard --storage "$storage" --port 8765 >/dev/null 2>&1 &
server=$!
trap 'kill $server' EXIT
sleep 5
shot() {
  chromium --headless --no-sandbox --disable-gpu --window-size=1600,1400 \
    --virtual-time-budget=10000 --screenshot="$out/$2.png" "http://127.0.0.1:8765/dashboard/$1"
}
shot "" studies
shot studies/1 study_history
shot studies/1/trials trial_detail
