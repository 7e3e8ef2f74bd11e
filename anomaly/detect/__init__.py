"""Scores -> thresholds -> labels -> events, separate from the models that make the scores."""
