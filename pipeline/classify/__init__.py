"""On-topic gate and sentence-level motive classification."""
