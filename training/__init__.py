"""Training jobs, MLflow tracking and registry, reports and the command line."""
