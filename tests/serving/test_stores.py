"""Stores and channels over HTTP, on the served layout of tests/serving/helpers.py: store S1 has the even products on
its shelf, S2 the first half; products with an index divisible by 5 sell mostly online (boosted online and in the
app, demoted in stores); products divisible by 7 are out of stock everywhere."""

from __future__ import annotations

import pytest

from tests.serving.helpers import customer, product

N_PRODUCTS = 30
EVEN = {product(p) for p in range(0, N_PRODUCTS, 2)}
ONLINE = {product(p) for p in range(0, N_PRODUCTS, 5)}
OUT = {product(p) for p in range(0, N_PRODUCTS, 7)}


def items(served, url: str, **headers) -> list[dict]:
    r = served.get(url, key="storefront", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["items"]


@pytest.mark.parametrize("who", [customer(0), customer(3), customer(41), "someone-new"])
def test_an_in_store_list_holds_only_the_store_shelf_and_is_topped_up_from_it(served, who):
    got = items(served, f"/v1/customers/{who}/recommendations?n=8&store_id=S1")
    assert len(got) == 8
    assert {i["product_id"] for i in got} <= EVEN - OUT
    assert not any(i["reason_code"] == "rec.order_online" for i in got)


def test_order_online_keeps_the_rest_marked_and_says_so_in_both_languages(served):
    url = f"/v1/customers/{customer(0)}/recommendations?n=15&store_id=S1&availability=order_online"
    got = items(served, url)
    marked = {i["product_id"] for i in got if i["reason_code"] == "rec.order_online"}
    assert marked and marked == {i["product_id"] for i in got} - EVEN
    assert not {i["product_id"] for i in got} & OUT  # what cannot be ordered online is not offered
    plain = items(served, f"/v1/customers/{customer(0)}/recommendations?n=15")
    assert [i["product_id"] for i in got] == [i["product_id"] for i in plain]  # rank order kept
    english = {i["product_id"]: i["reason"] for i in got}
    assert all(english[p].endswith("(not in this store: order online)") for p in marked)
    zh = items(served, url, **{"Accept-Language": "zh-CN"})
    assert all("线上下单" in i["reason"] for i in zh if i["product_id"] in marked)
    assert [i["reason_code"] for i in zh] == [i["reason_code"] for i in got]


def test_a_store_the_inventory_does_not_list_has_the_catalogue_stock(served):
    url = f"/v1/customers/{customer(5)}/recommendations?n=12"
    assert items(served, url + "&store_id=S9") == items(served, url)


def test_the_channel_moves_online_products_up_online_and_down_in_store(served):
    def places(channel: str) -> list[int]:
        got = items(served, f"/v1/customers/{customer(2)}/recommendations?n=20&channel={channel}")
        return [k for k, i in enumerate(got) if i["product_id"] in ONLINE]

    online, store = places("online"), places("store")
    assert online and store and sum(online) / len(online) < sum(store) / len(store)


def test_similar_products_and_the_batch_take_the_store_too(served):
    similar = items(served, "/v1/products/P004/similar?n=6&store_id=S2")
    assert len(similar) == 6 and all(int(i["product_id"][1:]) < N_PRODUCTS // 2 for i in similar)
    r = served.post("/v1/recommendations/batch", key="storefront",
                    json={"customer_ids": [customer(1), customer(2)], "n": 5, "store_id": "S1", "channel": "store"})
    assert r.status_code == 200, r.text
    for result in r.json()["results"]:
        assert len(result["items"]) == 5 and {i["product_id"] for i in result["items"]} <= EVEN - OUT
    bad = served.post("/v1/recommendations/batch", key="storefront",
                      json={"customer_ids": [customer(1)], "availability": "maybe"})
    assert bad.status_code == 422


@pytest.mark.parametrize("query", ["channel=fax", "availability=somewhere", "store_id=" + "x" * 300,
                                   "store_id="])
def test_bad_store_and_channel_parameters_are_422(served, query):
    r = served.get(f"/v1/customers/{customer(0)}/recommendations?{query}", key="storefront")
    assert r.status_code == 422, r.text
    assert query.split("=")[0] in r.text


def test_openapi_documents_the_store_and_channel_parameters(served):
    spec = served.get("/openapi.json").json()
    params = {p["name"]: p for p in spec["paths"]["/v1/customers/{customer_id}/recommendations"]["get"]["parameters"]}
    assert set(params["channel"]["schema"]["anyOf"][0]["enum"]) == {"store", "online", "app"}
    assert "shelf" in params["store_id"]["description"]
    assert "order_online" in params["availability"]["description"]


def test_a_stock_file_in_the_data_folder_is_the_served_shelf_until_it_goes(served, caplog):
    """Stock changes faster than models: the data folder's inventory file, validated as training validates it,
    replaces the model's store stock within a tick; a broken file keeps the previous stock; removing it brings
    the model's back."""
    url = f"/v1/customers/{customer(0)}/recommendations?n=6&store_id=S1&exclude_bought=false"
    stock = served.services.stock
    path = served.settings.data_dir / "inventory.csv"
    path.write_text("product_id,store_id,quantity\nP001,S1,3\nP003,S1,1\nP005,S1,0\nP002,S1,-1\nP011,S2,2\n")
    assert stock.refresh()
    got = items(served, url)
    assert {i["product_id"] for i in got} == {"P001", "P003"}  # P005 has none left, P002's row is rejected
    marked = items(served, url + "&availability=order_online")
    assert {i["product_id"] for i in marked if i["reason_code"] != "rec.order_online"} <= {"P001", "P003"}
    similar = items(served, "/v1/products/P004/similar?n=5&store_id=S2")
    assert [i["product_id"] for i in similar] == ["P011"]

    path.write_text("product_id\nP001\n")  # no store_id column: refused in one line, the previous stock stays
    assert not stock.refresh()
    assert "inventory.csv: column 'store_id' is missing" in caplog.text
    assert {i["product_id"] for i in items(served, url)} == {"P001", "P003"}

    path.unlink()
    assert stock.refresh()
    assert {i["product_id"] for i in items(served, url)} <= EVEN - OUT
