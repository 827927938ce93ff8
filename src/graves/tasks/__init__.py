"""Experiments as tasks for the one training loop (see ``graves.train``): data, loss, evaluation."""
