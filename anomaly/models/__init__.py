"""Detectors: deep autoencoders and scikit-learn baselines behind one contract."""
