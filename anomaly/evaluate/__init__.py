"""Metrics and statistics: pure functions of labels, scores and run records."""
