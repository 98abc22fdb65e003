"""Shared Lightning callbacks: checkpoints, resume state, preemption, heartbeats, curriculum, annealing,
non-finite guard, gradient norms."""

from callbacks.annealing import ScalarAnnealing
from callbacks.curriculum import CurriculumCallback
from callbacks.epoch_heartbeat import EpochHeartbeat
from callbacks.grad_norm import GradNormMonitor
from callbacks.heartbeat import Heartbeat
from callbacks.latest_checkpoint import LatestCheckpoint
from callbacks.nonfinite_guard import NonFiniteGuard
from callbacks.preemption import Preemption
from callbacks.resume_state import ResumeState

__all__ = [
    "CurriculumCallback",
    "EpochHeartbeat",
    "GradNormMonitor",
    "Heartbeat",
    "LatestCheckpoint",
    "NonFiniteGuard",
    "Preemption",
    "ResumeState",
    "ScalarAnnealing",
]
