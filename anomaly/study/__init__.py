"""Runs and studies: one training run, sweeps of runs, and the report built from tracked runs."""
