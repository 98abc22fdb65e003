#!/usr/bin/env bash
# Every V1 model (shared core, per-unit LN, null) on the gaborium trials of the T1 sessions, one table at the end.
#
#   experiments/run_all_models_gaborium.sh                  # T1 small on CPU
#   experiments/run_all_models_gaborium.sh size=full        # T1 full on a GPU
# Extra arguments are Hydra overrides for every job; MODELS picks the model configs (conf/model/v1_*.yaml).
set -euo pipefail
EXPERIMENT=${EXPERIMENT:-v1_multidataset} MODELS=${MODELS:-v1_core,v1_ln,v1_null} \
    METRIC=${METRIC:-test/fraction_of_oracle} \
    exec "$(dirname "$0")/run_all_models.sh" "data.stim_types=[gaborium]" "$@"
