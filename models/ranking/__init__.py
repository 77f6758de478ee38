"""The second stage of the two-stage recommender: candidate features and the LightGBM LambdaRank reranker."""

from models.ranking.features import CandidateFeatures, PairFeatures
from models.ranking.lambdarank import LambdaRanker, RankerParams

__all__ = ["CandidateFeatures", "LambdaRanker", "PairFeatures", "RankerParams"]
