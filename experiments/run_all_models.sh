#!/usr/bin/env bash
# Train every model of a system on one dataset in one Hydra multirun, then print one comparison table.
#
#   experiments/run_all_models.sh                                   # CIFAR-10 (files under data/)
#   EXPERIMENT=cifar100_densenet40 experiments/run_all_models.sh    # another dataset's recipe
#   experiments/run_all_models_gaborium.sh                          # the V1 models (see run_all_models_*.sh)
#   MODELS=resnet20,resnet56 experiments/run_all_models.sh trainer.max_epochs=30
#   # offline smoke check (procedural CIFAR-shaped data, a few batches per model):
#   experiments/run_all_models.sh data=procedural data.procedural.channels=3 \
#       data.procedural.image_size=32 data.procedural.num_classes=10 debug=limit test_after_fit=true
#
# Extra arguments are Hydra overrides passed to every job. The experiment picks the data and the
# recipe (batch size, epochs); `model=` on the command line wins over the experiment's
# `override /model`, so each job trains another model with that model's own optimizer and LR schedule
# (conf/model/*.yaml) under the same data, batch size and epoch budget. Set the model list with
# MODELS (not with a model= argument, which would clash with the sweep's).
# Runs and the sweep table land in ${VISIONCORE_ROOT:-.}/logs/<experiment name>/multiruns/<id>/.
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
[[ -x $PYTHON ]] || PYTHON=python
EXPERIMENT=${EXPERIMENT:-cifar10_resnet20}
MODELS=${MODELS:-resnet20,resnet56,resnet110,densenet40,resnet18}
METRIC=${METRIC:-test/acc}   # the table's ranking column (higher is better), e.g. test/fraction_of_oracle

# A sweep id of our own, so we can find this sweep's table afterwards (conf/hydra/default.yaml puts the
# sweep in .../multiruns/${vc.run_id:}, and run_id honours VISIONCORE_RUN_ID). Under SLURM keep the job's.
if [[ -z ${VISIONCORE_RUN_ID:-} && -z ${SLURM_JOB_ID:-} ]]; then
    VISIONCORE_RUN_ID="all_models_$(date +%Y-%m-%d_%H-%M-%S)_$$"
    export VISIONCORE_RUN_ID
fi
LOG_ROOT="${VISIONCORE_ROOT:-.}/logs"
marker=$(mktemp)
trap 'rm -f "$marker"' EXIT

"$PYTHON" -m training.run --multirun "experiment=$EXPERIMENT" "model=$MODELS" "$@"

# The table MultirunSummary wrote at the end of the sweep: by id, else the newest one written since we started.
table=""
if [[ -n ${VISIONCORE_RUN_ID:-} ]]; then
    table=$(find "$LOG_ROOT" -path "*/multiruns/$VISIONCORE_RUN_ID/multirun_summary.csv" 2>/dev/null | head -n 1 || true)
fi
if [[ -z $table ]]; then
    table=$(find "$LOG_ROOT" -name multirun_summary.csv -newer "$marker" -print 2>/dev/null | xargs -r ls -t | head -n 1 || true)
fi
if [[ -z $table ]]; then
    echo "run_all_models.sh: the sweep finished but no multirun_summary.csv was found under $LOG_ROOT" \
        "(if you moved logs with paths.log_dir=..., set VISIONCORE_ROOT instead)." >&2
    exit 1
fi
echo
"$PYTHON" experiments/compare_runs.py --metric "$METRIC" "$table"
