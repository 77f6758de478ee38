"""MLflow model-from-code entry of the uplift model: the registry stores this file, not a pickled object."""

from mlflow.models import set_model

from training.pyfunc import UpliftPyfunc

set_model(UpliftPyfunc())
