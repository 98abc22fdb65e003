#!/usr/bin/env bash
# Data-parallel training on one machine with torchrun: one process per GPU (or CPU slot with gloo).
#
#   NPROC=4 experiments/torchrun.sh experiment=cifar10_resnet18
#   NPROC=2 experiments/torchrun.sh experiment=cnn_digits trainer.accelerator=cpu   # DDP on a laptop
#
# trainer=torchrun leaves devices/nodes to the launcher's environment (LOCAL_WORLD_SIZE, WORLD_SIZE),
# which Lightning detects; every rank derives the same run directory from TORCHELASTIC_RUN_ID.
# data.batch_size is per process: the global batch is NPROC x data.batch_size.
set -euo pipefail

cd "$(dirname "$0")/.."
TORCHRUN=${TORCHRUN:-.venv/bin/torchrun}
[[ -x $TORCHRUN ]] || TORCHRUN=torchrun

exec "$TORCHRUN" --standalone --nproc_per_node="${NPROC:-2}" -m training.run trainer=torchrun "$@"
