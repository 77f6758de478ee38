"""Churn risk with calibrated probabilities and plain-language reasons."""
