"""Shared Lightning callbacks: heartbeats, curriculum, annealing, non-finite guard, gradient norms."""

from callbacks.annealing import ScalarAnnealing
from callbacks.curriculum import Curriculum
from callbacks.epoch_heartbeat import EpochHeartbeat
from callbacks.grad_norm import GradNormMonitor
from callbacks.heartbeat import Heartbeat
from callbacks.nonfinite_guard import NonFiniteGuard

__all__ = [
    "Curriculum",
    "EpochHeartbeat",
    "GradNormMonitor",
    "Heartbeat",
    "NonFiniteGuard",
    "ScalarAnnealing",
]
