"""MLflow model-from-code entry of the clv model: the registry stores this file, not a pickled object."""

from mlflow.models import set_model

from training.pyfunc import ClvPyfunc

set_model(ClvPyfunc())
