"""Flight-telemetry anomaly detection with LSTM and Transformer autoencoders."""

import os
from pathlib import Path

__version__ = "0.1.0"


def user_dir(name: str) -> Path:
    """A folder of per-user files (the model cache, tracebacks): `ANOMALY_CACHE`, else
    ~/.cache/anomaly."""
    base = os.environ.get("ANOMALY_CACHE") or Path.home() / ".cache" / "anomaly"
    return Path(base) / name
