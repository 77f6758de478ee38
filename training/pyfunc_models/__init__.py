"""Model-from-code files MLflow logs for each registered model (see training/pyfunc.py)."""
