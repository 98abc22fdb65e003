"""The shared layer: what the runner and every system use (errors, checkpoint I/O, optim, schedulers,
figures, sample files). It imports no system and not the runner (`make lint`)."""
