"""Product attributes: the products table completed from the log, and the tokens models read."""

import pandas as pd

from features.products import attribute_tokens, price_bands, product_attributes


def test_a_log_with_names_only_gets_names_prices_and_a_product_type():
    tx = pd.DataFrame({
        "customer_id": ["c1", "c1", "c2", "c2"],
        "product_id": ["85123A", "85123A", "22423", "22423"],
        "timestamp": pd.to_datetime(["2011-01-01", "2011-02-01", "2011-01-03", "2011-03-01"]),
        "amount": [5.9, 2.95, 12.75, -12.75], "quantity": [2.0, 1.0, 1.0, -1.0],
        "is_return": [False, False, False, True],
        "description": ["WHITE HANGING HEART T-LIGHT HOLDER", "WHITE HANGING HEART T-LIGHT HOLDER",
                        "REGENCY CAKESTAND 3 TIER", "REGENCY CAKESTAND 3 TIER"],
    })
    frame = product_attributes({"transactions": tx}).set_index("product_id")
    assert frame.loc["85123A", "name"] == "WHITE HANGING HEART T-LIGHT HOLDER"
    assert frame.loc["85123A", "price"] == 2.95 and frame.loc["22423", "price"] == 12.75  # returns left out
    assert frame.loc["85123A", "category"] == "holder" and frame.loc["22423", "category"] == "tier"


def test_a_products_table_wins_and_unsold_products_stay():
    tx = pd.DataFrame({"customer_id": ["c1"], "product_id": ["p1"], "timestamp": pd.to_datetime(["2024-01-01"]),
                       "amount": [10.0]})
    products = pd.DataFrame({"product_id": ["p1", "p2"], "category": ["rings", "rings"], "price": [None, 30.0],
                             "name": ["gold ring", "silver ring"]})
    frame = product_attributes({"transactions": tx, "products": products}).set_index("product_id")
    assert list(frame.index) == ["p1", "p2"]
    assert frame.loc["p1", "price"] == 10.0 and frame.loc["p2", "price"] == 30.0
    assert frame.loc["p2", "category"] == "rings"


def test_tokens_cover_hierarchy_brand_price_band_free_attributes_and_name():
    frame = pd.DataFrame({
        "product_id": [f"p{i}" for i in range(6)],
        "category": ["jewellery > rings"] * 3 + ["jewellery/earrings"] * 3,
        "brand": ["Lumen", "Lumen", "Ivy", "Ivy", None, "Ivy"],
        "price": [100.0, 200.0, 300.0, 10.0, 20.0, 30.0],
        "material": ["gold", "gold", "silver", "silver", "gold", "silver"],
        "sku_note": [f"batch {i}" for i in range(6)],  # one value per product: free text, not an attribute
        "name": ["Aurora Gold Ring", "Halo gold ring", "twist ring", "drops", "hoops", "studs"],
    })
    tokens = attribute_tokens(frame, price_band_count=3)
    assert tokens[0] == ["category=jewellery", "category=jewellery/rings", "brand=lumen", "price=jewellery > rings:0",
                         "material=gold", "w=aurora", "w=gold", "w=ring", "p=aurora_gold", "p=gold_ring"]
    assert "category=jewellery/earrings" in tokens[3] and not any(t.startswith("brand=") for t in tokens[4])
    assert not any(t.startswith("sku_note=") for row in tokens for t in row)
    assert list(price_bands(frame, 3)) == [0, 1, 2, 0, 1, 2]  # bands within each category
    assert attribute_tokens(frame, 3, name_pairs=False)[0][-1] == "w=ring"
