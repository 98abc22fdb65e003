"""Checkpoint files: atomic writes stamped with the run's config, and picking a good one to resume.

Every checkpoint carries `checkpoint["visioncore"] = {schema_version, config, git_revision}` so
`task=test ckpt_path=…` needs nothing else, and old layouts can be recognised and migrated.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import tempfile
import warnings
import zipfile
from functools import cache
from pathlib import Path
from typing import Any

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from training.toolkit.errors import CheckpointError
from training.toolkit.moved_modules import upgrade_targets
from training.toolkit.safe_load import (
    UnsafeCheckpointError,
    check_config_targets,
    plain_checkpoint,
    safe_torch_load,
)

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2  # 2: plain types only, so every file reloads with torch.load(weights_only=True)
META_KEY = "visioncore"


@cache
def git_revision() -> str:
    """The code version a checkpoint was made with (`unknown` outside a git checkout)."""
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    if rev.returncode != 0:
        return "unknown"
    return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def checkpoint_metadata(config: dict[str, Any]) -> dict[str, Any]:
    return {"schema_version": SCHEMA_VERSION, "config": config, "git_revision": git_revision()}


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes to a temporary file in the same folder, fsyncs, then renames over the target.

    A crash mid-write leaves the previous file intact and at worst a stray `.tmp` file, which
    resume ignores. Also stamps each checkpoint with the run's metadata, writes only plain types and
    reads through `load_checkpoint_file`, so Lightning's own `ckpt_path=` loads run no code either.
    """

    def __init__(self, metadata: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.metadata = metadata

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO takes no storage_options")
        if self.metadata is not None:
            checkpoint[META_KEY] = self.metadata
        atomic_torch_save(checkpoint, Path(path))

    def load_checkpoint(
        self, path: str | os.PathLike, map_location: Any | None = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        return load_checkpoint_file(path, map_location=map_location or "cpu")

    def remove_checkpoint(self, path: str | os.PathLike) -> None:
        remove_checkpoint_file(Path(path))


def sidecar_path(path: Path) -> Path:
    """`<name>.ckpt.sha256.json`: the size and SHA-256 of a checkpoint, written after the file is durable."""
    return path.with_name(path.name + ".sha256.json")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_durably(path: Path, write: Any) -> None:
    """`write(handle)` into a temporary file in the same folder, fsync, rename over `path`, fsync the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    finally:
        os.close(dir_fd)


def atomic_torch_save(obj: Any, path: Path) -> None:
    """`torch.save` of `obj` in plain types (so it reloads with weights_only=True), atomically; then its
    sidecar, so resume can tell a complete file from a damaged one without unpickling it."""
    _write_durably(path, lambda handle: torch.save(plain_checkpoint(obj), handle))
    record = {"size": path.stat().st_size, "sha256": _sha256(path)}
    _write_durably(sidecar_path(path), lambda handle: handle.write(json.dumps(record).encode()))


def remove_checkpoint_file(path: Path) -> None:
    """Delete a checkpoint and its sidecar."""
    path.unlink(missing_ok=True)
    sidecar_path(path).unlink(missing_ok=True)


def load_checkpoint_file(
    path: str | os.PathLike, map_location: Any = "cpu", mmap: bool = False
) -> dict[str, Any]:
    """Load a checkpoint dict without running code from it (`training.toolkit.safe_load`), with an error that
    names the file and what to do for bad input. `mmap`: map the tensors instead of reading them."""
    path = Path(path).expanduser()
    if not path.exists():
        raise CheckpointError(
            f"ckpt_path={path} does not exist. Give the path of a .ckpt file, e.g. "
            "logs/<experiment>/runs/<run>/checkpoints/last.ckpt, or use resume=auto."
        )
    if path.is_dir():
        raise CheckpointError(
            f"ckpt_path={path} is a directory; give a .ckpt file inside it "
            f"(found: {sorted(p.name for p in path.glob('*.ckpt'))[:5]})."
        )
    try:
        checkpoint = safe_torch_load(path, map_location=map_location, mmap=mmap and zipfile.is_zipfile(path))
    except UnsafeCheckpointError:
        raise
    except Exception as err:  # torch raises several types for garbage files
        raise CheckpointError(
            f"ckpt_path={path} is not a readable PyTorch checkpoint ({type(err).__name__}: "
            f"{str(err)[:200]}). Is the file truncated or of another format?"
        ) from err
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"ckpt_path={path} holds a {type(checkpoint).__name__}, not a checkpoint dict.")
    return checkpoint


def stored_config(
    path: str | os.PathLike, source: str, checkpoint: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """The run config a checkpoint carries (None without VisionCore metadata), its `_target_`s checked
    before anything builds them (`check_config_targets`; `source` names the file for the message), with
    moved modules under their current paths (`upgrade_targets`). Read from `checkpoint` when already
    loaded, else from a memory-mapped load whose tensors are never read, so a command that rebuilds a run
    from the file reads the weights once."""
    if checkpoint is None:
        checkpoint = load_checkpoint_file(path, mmap=True)
    meta = checkpoint.get(META_KEY)
    if meta is None:
        return None
    config = meta.get("config") or {}
    check_config_targets(config, source)
    return upgrade_targets(config)


def load_weights(module: torch.nn.Module, path: str | os.PathLike) -> None:
    """Load a checkpoint's `state_dict` strictly: the weights it holds (averaged ones under EMA)."""
    module.load_state_dict(load_checkpoint_file(path)["state_dict"], strict=True)


def is_valid_checkpoint(path: Path) -> bool:
    """True when the file is the one its sidecar describes (size and SHA-256; nothing is unpickled), or,
    for a file without a sidecar, when it loads and carries model weights and our metadata. A file that
    would run code is not skipped as corrupt: its `UnsafeCheckpointError` stops the resume."""
    sidecar = sidecar_path(path)
    if sidecar.is_file():
        try:
            record = json.loads(sidecar.read_text())
        except (OSError, ValueError):
            return False
        return path.stat().st_size == record.get("size") and _sha256(path) == record.get("sha256")
    try:
        checkpoint = load_checkpoint_file(path)
    except CheckpointError:
        return False
    return "state_dict" in checkpoint and META_KEY in checkpoint


def _recency(path: Path) -> tuple[float, float]:
    return path.stat().st_mtime, path.stat().st_size


def newest_valid_checkpoint(checkpoint_dir: Path) -> Path | None:
    """The newest checkpoint in the folder that loads; corrupt newer ones are skipped with a warning."""
    if not checkpoint_dir.is_dir():
        return None
    candidates = sorted((p for p in checkpoint_dir.glob("*.ckpt") if p.is_file()), key=_recency, reverse=True)
    for path in candidates:
        if is_valid_checkpoint(path):
            return path
        warnings.warn(
            f"Skipping unreadable or incomplete checkpoint {path}; trying an older one.", stacklevel=2
        )
    return None
