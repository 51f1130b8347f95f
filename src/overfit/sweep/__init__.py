"""Hyperparameter sweeps: the spec (pure), the Ray Tune trainable and Tuner, the results and report."""
