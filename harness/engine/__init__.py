"""Execution: features, batching, training loops, the runner, executors and workers."""
