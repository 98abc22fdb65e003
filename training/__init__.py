"""The runner (`python -m training.run`, `training.migrate`) and, in `training.toolkit`, the shared layer."""

# Modules that moved into the shared layer; old checkpoints' stored configs name them (see training.toolkit.moved_modules).
MOVED = {
    f"training.{name}": f"training.toolkit.{name}"
    for name in (
        "checkpoints",
        "errors",
        "figures",
        "legacy",
        "net_options",
        "optim",
        "safe_load",
        "sample_files",
        "schedulers",
        "stage_checkpoint",
    )
}
