#!/usr/bin/env bash
# GPU checks of the data path and trainer (benchmarks/gpu_check.py; its docstring says what).
#   bash benchmarks/gpu_check.sh          on a CUDA machine: benchmarks/results/gpu_check.{json,md}
#   bash benchmarks/gpu_check.sh --tiny   the same code on CPU at toy sizes, results in a temp dir
# Runs from the repository root with $PYTHON, else .venv/bin/python, else python3.
set -euo pipefail
cd "$(dirname "$0")/.."
py="${PYTHON:-}"
if [[ -z "$py" ]]; then
    if [[ -x .venv/bin/python ]]; then py=.venv/bin/python; else py=python3; fi
fi
exec "$py" benchmarks/gpu_check.py "$@"
