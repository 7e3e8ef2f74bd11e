"""Tracking and packaging: the only subpackage that imports mlflow."""
