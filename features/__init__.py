"""Data contract, loaders, validation, synthetic data and feature pipelines."""
