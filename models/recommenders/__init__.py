"""Recommenders behind one contract (fit / recommend / similar / save / load) and the two-stage model.

Candidate generators and peers: :class:`Popularity` / :class:`Trending`, :class:`RepeatPurchase`,
:class:`ItemKNN` / :class:`BM25`, :class:`ALS`, :class:`BPR`, :class:`EASE`, :class:`TifuKNN`, :class:`Recanet` (repeat consumption), :class:`AttributeRecommender` (new products, by their
attributes). The product's own
recommender, :class:`TwoStage` (registry name ``clientele``), reranks the union of their candidates.
"""

from models.recommenders.als import ALS
from models.recommenders.attribute_tower import AttributeRecommender
from models.recommenders.base import Recommender
from models.recommenders.bpr import BPR
from models.recommenders.ease import EASE
from models.recommenders.filters import Filters
from models.recommenders.item_knn import BM25, ItemKNN
from models.recommenders.policy import COLD_START, NON_PERSONAL, PERSONAL
from models.recommenders.popularity import Popularity, Seasonal, Trending
from models.recommenders.recanet import Recanet
from models.recommenders.repeat import RepeatPurchase
from models.recommenders.tifu_knn import TifuKNN
from models.recommenders.two_stage import TwoStage

__all__ = ["ALS", "AttributeRecommender", "BM25", "BPR", "COLD_START", "EASE", "Filters", "ItemKNN", "NON_PERSONAL", "PERSONAL", "Popularity",
           "Recanet", "Recommender", "RepeatPurchase", "Seasonal", "TifuKNN", "Trending", "TwoStage", "registry"]


def registry() -> dict[str, type[Recommender]]:
    """Every recommender class by its name (the ``models:`` key in configs/recommender.yaml)."""
    return dict(Recommender._registry)
