#!/usr/bin/env bash
# The multi-session V1 model with DDP on one machine: one process per GPU (or 2 CPU processes with gloo).
#
#   NPROC=8 experiments/torchrun_v1.sh size=full                          # 8 GPUs, T1 full size
#   NPROC=2 experiments/torchrun_v1.sh trainer.accelerator=cpu            # DDP on a laptop, T1 small
#   NPROC=4 experiments/torchrun_v1.sh experiment=v1_realistic size=full  # another v1 experiment
#
# data.batch_size is per session per process; every step holds every session on every rank, and
# validation bits/spike are exact for any number of processes (padding samples are masked out).
set -euo pipefail
exec "$(dirname "$0")/torchrun.sh" experiment=v1_multidataset "$@"
