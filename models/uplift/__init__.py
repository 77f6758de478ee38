"""Uplift models: the change a campaign makes to each customer's outcome, learned from randomised campaigns."""
