"""Flight-telemetry anomaly detection with LSTM and Transformer autoencoders."""

__version__ = "0.1.0"
