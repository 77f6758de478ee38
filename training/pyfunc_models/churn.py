"""MLflow model-from-code entry of the churn model: the registry stores this file, not a pickled object."""

from mlflow.models import set_model

from training.pyfunc import ChurnPyfunc

set_model(ChurnPyfunc())
