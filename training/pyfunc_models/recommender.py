"""MLflow model-from-code entry of the recommender model: the registry stores this file, not a pickled object."""

from mlflow.models import set_model

from training.pyfunc import RecommenderPyfunc

set_model(RecommenderPyfunc())
