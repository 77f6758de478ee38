"""Recommenders, reranker, churn classifier, CLV and segments: fit / predict / save / load."""
