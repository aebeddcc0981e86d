"""The training run: the loop around a runtime, its state (the checkpoint format), summary and best checkpoint."""
