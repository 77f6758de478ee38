"""A tiny, hand-checkable retailer with every table, used by the feature tests."""

import pandas as pd

CUTOFF = pd.Timestamp("2024-04-01")


def tiny_tables() -> dict[str, pd.DataFrame]:
    def ts(values):
        return pd.to_datetime(values, format="ISO8601")
    transactions = pd.DataFrame({
        "customer_id": ["c1", "c1", "c1", "c1", "c1", "c1", "c2", "c2", "c3", "c4"],
        "order_id": ["o1", "o1", "o2", "o3", "o3", "o4", "o5", "o6", "o7", "o8"],
        "product_id": ["p1", "p2", "p1", "p3", "p3", "p1", "p2", "p1", "p1", "p2"],
        "timestamp": ts(["2024-01-01 10:00", "2024-01-01 10:00", "2024-02-01 12:00", "2024-03-02 00:00",
                         "2024-03-05 09:00", "2024-04-10", "2024-03-31 23:00", "2024-04-01 00:00", "2024-05-01",
                         "2024-01-15"]),
        "amount": [10.0, 20.0, 10.0, 30.0, -30.0, 10.0, 5.0, 10.0, 10.0, 12.0],
        "quantity": [1.0, 2.0, 1.0, 1.0, -1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
        "channel": ["store", "store", "online", "online", "online", "online", "app", "app", "store", "store"],
        "is_return": [False, False, False, False, True, False, False, False, False, False],
    })
    customers = pd.DataFrame({
        "customer_id": ["c1", "c2", "c3", "c4", "c5"],
        "signup_date": ts(["2023-12-01", "2024-03-01", "2024-04-20", "2024-01-01", "2024-02-01"]),
        "birth_year": pd.array([1990, 2000, None, 1985, 1970], dtype="Int64"),
        "region": ["north", "south", "north", "east", "west"],
        "member_tier": ["gold", "basic", "basic", "silver", "basic"],
        "consent_profiling": pd.array([True, False, True, True, True], dtype="boolean"),
    })
    products = pd.DataFrame({"product_id": ["p1", "p2", "p3"], "category": ["A", "A", "B"],
                             "price": [10.0, 12.0, None]})
    events = pd.DataFrame({
        "customer_id": ["c1", "c1", "c1", "c2"],
        "product_id": ["p1", "p1", "p2", "p3"],
        "event_type": ["view", "cart", "view", "wishlist"],
        "timestamp": ts(["2024-03-25", "2024-03-30", "2024-04-02", "2023-12-20"]),
    })
    feedback = pd.DataFrame({
        "customer_id": ["c1", "c1", "c2"],
        "timestamp": ts(["2024-01-10", "2024-03-20", "2024-04-05"]),
        "score": [4.0, 2.0, 1.0],
        "complaint": pd.array([False, True, True], dtype="boolean"),
    })
    return {"transactions": transactions, "customers": customers, "products": products, "events": events,
            "feedback": feedback}
