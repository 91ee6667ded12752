"""Training: data, learning-rate schedule, the training loop, and shipping a run as weights."""
