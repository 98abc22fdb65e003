#!/usr/bin/env bash
# Every V1 model on stimuli passed through the cone photoreceptor adaptation model (experiment v1_cones).
#
#   experiments/run_all_models_cones.sh               # T1 small on CPU
#   experiments/run_all_models_cones.sh size=full     # T1 full on a GPU
set -euo pipefail
EXPERIMENT=${EXPERIMENT:-v1_cones} MODELS=${MODELS:-v1_core,v1_ln,v1_null} \
    METRIC=${METRIC:-test/fraction_of_oracle} \
    exec "$(dirname "$0")/run_all_models.sh" "$@"
