"""Benchmarks: timings, FLOPs and memory of both models (paper Table 1), the app's response
times and the training step."""
