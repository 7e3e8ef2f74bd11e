"""Subcommands added by later stages (train, sweep, report, score)."""

from __future__ import annotations


def add_commands(sub, fmt_args) -> None:
    return None
