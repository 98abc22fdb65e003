#!/usr/bin/env bash
# Transfer (T3): pretrain the shared core on the T3 sessions, then fit new readouts on the held-out
# sessions with the core frozen, using 10/25/50/100% of their training data, beside a from-scratch
# control on the same data; one comparison table at the end.
#
#   experiments/run_all_models_pretraining.sh              # T3 small on CPU
#   experiments/run_all_models_pretraining.sh size=full    # on a GPU
# Extra arguments are Hydra overrides for every job (pretraining and transfer).
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
[[ -x $PYTHON ]] || PYTHON=python
FRACTIONS=${FRACTIONS:-0.1,0.25,0.5,1.0}
LOG_ROOT="${VISIONCORE_ROOT:-.}/logs"
stamp="pretraining_$(date +%Y-%m-%d_%H-%M-%S)_$$"

VISIONCORE_RUN_ID="${stamp}_core" "$PYTHON" -m training.run experiment=v1_pretrain "$@"
core=$(find "$LOG_ROOT/v1_pretrain/runs/${stamp}_core/checkpoints" -name 'best-*.ckpt' | head -n 1)
[[ -n $core ]] || { echo "run_all_models_pretraining.sh: the pretraining run wrote no best checkpoint" >&2; exit 1; }

# Frozen pretrained core + new readouts, then the same fractions trained from scratch (the control).
for arm in frozen scratch; do
    if [[ $arm == frozen ]]; then core_args=("model.pretrained_checkpoint=$core" model.freeze_vision=true)
    else core_args=(model.pretrained_checkpoint=null model.freeze_vision=false model.regularization.readout_prior=0); fi
    VISIONCORE_RUN_ID="${stamp}_$arm" "$PYTHON" -m training.run --multirun experiment=v1_transfer \
        "data.train_fraction=$FRACTIONS" "${core_args[@]}" "$@"
    echo
    echo "== $arm core =="
    "$PYTHON" experiments/compare_runs.py --metric "${METRIC:-test/fraction_of_oracle}" \
        "$LOG_ROOT/v1_transfer/multiruns/${stamp}_$arm/multirun_summary.csv"
done
