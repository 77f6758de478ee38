"""The second stage of the two-stage recommender: candidate features and the LightGBM LambdaRank reranker."""

import models.recommenders  # noqa: F401  (first: its two-stage model imports this package's features)
from models.ranking.features import CandidateFeatures, PairFeatures
from models.ranking.lambdarank import LambdaRanker, RankerParams

__all__ = ["CandidateFeatures", "LambdaRanker", "PairFeatures", "RankerParams"]
