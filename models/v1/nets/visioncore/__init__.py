"""The Yates-Lab VisionCore network family (the predecessor of `v1`), ported with its own parameter names so
its checkpoints migrate (models/v1/legacy.py) and its model configs build (`model=v1_visioncore`)."""

from models.v1.nets.visioncore.network import SharedCore, VisionCoreNet

__all__ = ["SharedCore", "VisionCoreNet"]
