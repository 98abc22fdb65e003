#!/usr/bin/env bash
# The GPU check in one command, on a CUDA machine: every GPU configuration for a few steps in bf16, the
# CUDA rows of the efficiency and v1 data benchmarks, and training steps under
# torch.cuda.set_sync_debug_mode("error") (benchmarks/gpu_check.py says what each table holds).
#   bash benchmarks/gpu_check.sh                       # writes gpu_check.md; under 8 minutes on one GPU
#   PYTHON=/opt/env/bin/python bash benchmarks/gpu_check.sh --out results/gpu.md --steps 20
# Record its tables in benchmarks/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z "${PYTHON:-}" ]]; then
  make install >/dev/null  # the locked environment, as the README's commands use it
  PYTHON=.venv/bin/python
fi
exec "$PYTHON" benchmarks/gpu_check.py "$@"
