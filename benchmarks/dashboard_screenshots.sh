#!/usr/bin/env bash
# Screenshots of optuna-dashboard on the studies of one `jointnas run`, in headless Chromium
# (Debian: apt-get install chromium). One stage, one study: on a fresh storage, study 1 is the
# coarse stage (NAME), 2 the fine search's predictions (NAME.fine), 3 the final trainings
# (NAME.final). Usage: bash benchmarks/dashboard_screenshots.sh [STORAGE_URL]
set -euo pipefail
storage="${1:-sqlite:///jointnas.db}"
out="$(dirname "$0")/results/dashboard"
mkdir -p "$out"
jointnas dashboard --storage "$storage" --port 8765 >/dev/null 2>&1 &
server=$!
trap 'kill $server' EXIT
sleep 5
shot() {
  chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$(mktemp -d)" --window-size=1600,1400 \
    --virtual-time-budget=10000 --screenshot="$out/$2.png" "http://127.0.0.1:8765/dashboard/$1"
}
shot "" studies
shot studies/1 coarse_history
shot studies/1/analytics coarse_importance
shot studies/2 fine_history
shot studies/3 final_history
shot studies/3/trials final_trial_detail
