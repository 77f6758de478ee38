"""One path from model to response: the API, the model and the registered MLflow model recommend the same.

A small two-stage model is fitted on synthetic data, logged and registered exactly as ``clientele train`` does it
(:func:`training.train.log_recommender`), and served from the real MLflow registry. For customers of every kind
(known, known without history, unknown, refused profiling, erased, with and without events since the cutoff) and
every filter, ``model.recommend`` and the HTTP response must agree: same strategy, same products in the same
order, same scores and reasons. The registered model loaded with plain MLflow must agree too.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from urllib.parse import quote

import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from mlflow import MlflowClient

from features.identities import key_check, pseudonymise_tables
from features.privacy import pseudonymise
from features.synthetic import generate
from models.recommenders import Filters, TwoStage
from serving.app import create_app
from serving.settings import ServingSettings
from tests.models.recommenders.conftest import tiny_two_stage
from tests.serving.helpers import create_keys
from training.pyfunc import pip_requirements
from features.settings import CHAMPION, RECOMMENDER
from training.train import log_recommender

N_VALUES = (5, 20)
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


class World:
    """The fitted model, its registered version served by an app, and the customers of each kind."""

    def __init__(self, root: Path):
        tables = generate("beauty", customers=400, seed=11)
        products = tables["products"]
        # Some products out of stock, so the default filter has something to do.
        products["in_stock"] = np.arange(len(products)) % 9 != 0
        cutoff = tables["transactions"]["timestamp"].max().normalize() - pd.Timedelta(days=60)
        self.settings = ServingSettings(data_dir=root / "data", mlflow_tracking_uri=f"sqlite:///{root}/mlflow.db",
                                        poll_interval_s=3600, cache_path=root / "cache")
        # As training does (training.data): the model learns pseudonyms, the identity map keeps the own ids.
        tables, pairs = pseudonymise_tables(tables, self.settings.pseudonym_key)
        self.settings.identities().record(pairs)
        own = dict(zip(pairs["pseudonym"], pairs["customer_id"]))
        # New arrivals keep a place in every personal list, so the policy's mix is part of what is compared.
        self.model = TwoStage(**tiny_two_stage(new_arrival_share=0.2)).fit(tables, cutoff=cutoff)
        m = self.model
        mlflow.set_tracking_uri(self.settings.tracking_uri)
        mlflow.set_registry_uri(self.settings.tracking_uri)
        client = MlflowClient(tracking_uri=self.settings.tracking_uri, registry_uri=self.settings.tracking_uri)
        experiment = client.create_experiment("parity", artifact_location=self.settings.artifact_root.as_uri())
        with mlflow.start_run(experiment_id=experiment):
            info = log_recommender(m, root / "work", "beauty", pip_requirements(),
                                   key_check(self.settings.pseudonym_key))
        self.name = self.settings.model_name(RECOMMENDER)
        version = mlflow.register_model(info.model_uri, self.name).version
        client.set_registered_model_alias(self.name, CHAMPION, str(version))

        ids = np.array([own[p] for p in m.customers_.external_ids], dtype=object)  # the customers' own ids
        personal = ids[m.active_ & m.consent_]
        refused = ids[m.active_ & ~m.consent_]
        no_history = ids[~m.active_ & m.consent_]
        assert len(personal) > 20 and len(refused) and len(no_history)
        self.erased = str(personal[1])
        self.kinds = {
            "known": [str(c) for c in personal[[0, 7, 13]]],
            "known_with_events": [str(personal[4]), str(personal[9])],
            "no_history": [str(no_history[0])],
            "unknown": ["never-seen"],
            "unknown_with_events": ["new-shopper"],
            "refused": [str(refused[0])],
            "refused_with_events": [str(refused[1 % len(refused)])],
            "erased": [self.erased],
        }
        catalogue = m.catalog_.products.external_ids
        self.categories = [str(c) for c in m.catalog_.categories[:2]]
        prices = m.catalog_.price[np.isfinite(m.catalog_.price)]
        self.band = (float(np.quantile(prices, 0.25)), float(np.quantile(prices, 0.75)))
        assert m.catalog_.stock is not None and m.catalog_.channels  # the generator's inventory and channels
        self.store = str(m.catalog_.stock.stores[0])
        self.history = []
        for k, customer in enumerate(self.kinds["known_with_events"] + self.kinds["unknown_with_events"]
                                     + self.kinds["refused_with_events"]):
            top = m.recommend([self.pseudonym(customer)], n=3)["product_id"].tolist() if customer in ids else []
            touched = [str(catalogue[(11 * k + j * 17) % len(catalogue)]) for j in range(3)]
            bought = top[0] if top else touched[2]
            for product, kind in zip(touched[:2] + [bought], ("view", "cart", "purchase")):
                self.history.append({"customer_id": customer, "product_id": product, "event_type": kind})

        self.keys = create_keys(self.settings)
        self.app = TestClient(create_app(self.settings))
        self.app.__enter__()
        services = self.app.app.state.services  # type: ignore[attr-defined]
        assert services.store.loaded.wait(120), services.store.last_error
        for event in self.history:
            r = self.app.post("/v1/events", json=event, headers=self.headers("ingest"))
            assert r.status_code == 202, r.text
        assert self.app.delete(f"/v1/customers/{self.erased}", headers=self.headers("admin")).status_code in (200, 202)

    def pseudonym(self, customer: str) -> str:
        """How the model knows the customer."""
        return pseudonymise(customer, self.settings.pseudonym_key)

    def headers(self, key: str) -> dict[str, str]:
        return {"X-API-Key": self.keys[key]}

    def filter_cases(self) -> dict[str, tuple[str, Filters]]:
        """name -> (query string, the same filters for the model)."""
        one, two = self.categories
        lo, hi = self.band
        return {
            "default": ("", Filters()),
            "exclude_bought": ("exclude_bought=true", Filters(exclude_bought=True)),
            "include_bought": ("exclude_bought=false", Filters(exclude_bought=False)),
            "category": (f"category={quote(one)}", Filters(categories=[one])),
            "two_categories": (f"category={quote(one)}&category={quote(two)}", Filters(categories=[one, two])),
            "exclude_category": (f"exclude_category={quote(one)}", Filters(exclude_categories=[one])),
            "price_band": (f"price_min={lo}&price_max={hi}", Filters(price_min=lo, price_max=hi)),
            "out_of_stock_too": ("in_stock_only=false", Filters(in_stock_only=False)),
            "buy_again_half": ("exclude_bought=false&buy_again_share=0.5",
                               Filters(exclude_bought=False, buy_again_share=0.5)),
            "explore_only": ("exclude_bought=false&buy_again_share=0", Filters(exclude_bought=False,
                                                                              buy_again_share=0.0)),
            "new_only": ("new_only=true", Filters(new_only=True)),
            "new_only_include_bought": ("new_only=true&exclude_bought=false",
                                        Filters(new_only=True, exclude_bought=False)),
            "everything": (f"category={quote(one)}&exclude_bought=true&price_max={hi}&in_stock_only=false",
                           Filters(categories=[one], exclude_bought=True, price_max=hi, in_stock_only=False)),
            "store_shelf": (f"channel=store&store_id={self.store}", Filters(channel="store", store_id=self.store)),
            "order_online": (f"channel=store&store_id={self.store}&availability=order_online&category={quote(one)}",
                             Filters(channel="store", store_id=self.store, availability="order_online",
                                     categories=[one])),
            "app": ("channel=app&exclude_bought=false", Filters(channel="app", exclude_bought=False)),
            "store_not_listed": ("store_id=nowhere&price_max=" + str(hi), Filters(store_id="nowhere", price_max=hi)),
        }

    def model_says(self, customer: str, n: int, filters: Filters) -> dict:
        history = pd.DataFrame(self.history)
        history = history[history.customer_id == customer].assign(customer_id=self.pseudonym(customer))
        out = self.model.recommend([self.pseudonym(customer)], n=n, filters=filters, history=history,
                                   erased=[self.pseudonym(self.erased)])
        strategy = out["strategy"].iloc[0] if len(out) else None
        return {"strategy": strategy, "items": [(p, round(s, 6), r) for p, s, r in
                                                 zip(out["product_id"], out["score"], out["reason"])]}

    def api_says(self, customer: str, n: int, query: str) -> dict:
        url = f"/v1/customers/{quote(customer)}/recommendations?n={n}" + (f"&{query}" if query else "")
        r = self.app.get(url, headers=self.headers("storefront"))
        assert r.status_code == 200, r.text
        body = r.json()
        return {"strategy": body["strategy"],
                "items": [(i["product_id"], round(i["score"], 6), i["reason"]) for i in body["items"]]}

    def close(self) -> None:
        self.app.__exit__(None, None, None)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    w = World(tmp_path_factory.mktemp("parity"))
    yield w
    w.close()


def test_every_kind_of_customer_and_filter_gets_from_the_api_what_the_model_recommends(world):
    checked = empty = 0
    strategies = set()
    for (kind, customers), (name, (query, filters)), n in itertools.product(
            world.kinds.items(), world.filter_cases().items(), N_VALUES):
        for customer in customers:
            expected = world.model_says(customer, n, filters)
            got = world.api_says(customer, n, query)
            if expected["strategy"] is None:  # nothing passes: the model's frame has no row to carry a strategy
                expected["strategy"] = got["strategy"]
                empty += 1
            assert got == expected, f"{kind} {customer} with {name}, n={n}"
            strategies.add(got["strategy"])
            checked += 1
    assert strategies == {"personal", "cold_start", "non_personal"}
    assert checked == sum(map(len, world.kinds.values())) * len(world.filter_cases()) * len(N_VALUES)
    assert empty < checked / 10


def test_the_cases_differ_so_parity_means_something(world):
    """Filters and events change the answers: equal answers are not equal by accident."""
    customer = world.kinds["known_with_events"][0]
    answers = {name: str(world.api_says(customer, 20, query)) for name, (query, _) in world.filter_cases().items()}
    assert len(set(answers.values())) >= 5
    without = world.model.recommend([world.pseudonym(customer)], n=20)
    with_events = world.model_says(customer, 20, Filters())
    assert [p for p, _, _ in with_events["items"]] != without["product_id"].tolist()
    assert any(r.startswith(("similar to", "goes with")) for _, _, r in with_events["items"])
    erased = world.api_says(world.erased, 20, "")
    assert erased["strategy"] == "non_personal"


def test_similar_products_from_the_api_are_the_models(world):
    m = world.model
    products = [str(p) for p in m.catalog_.products.external_ids[::max(m.catalog_.size // 12, 1)][:12]]
    for product, (name, (query, filters)) in itertools.product(products, world.filter_cases().items()):
        if "exclude_bought" in query:
            continue
        r = world.app.get(f"/v1/products/{quote(product)}/similar?n=10" + (f"&{query}" if query else ""),
                          headers=world.headers("storefront"))
        assert r.status_code == 200, r.text
        got = [(i["product_id"], round(i["score"], 6), i["reason"]) for i in r.json()["items"]]
        out = m.similar([product], n=10, filters=filters)
        expected = [(p, round(s, 6), why) for p, s, why in zip(out["similar_product_id"], out["score"], out["reason"])]
        assert got == expected, f"{product} with {name}"


def test_the_registered_model_loaded_with_plain_mlflow_predicts_what_the_api_serves(world, monkeypatch):
    monkeypatch.setenv("CLIENTELE_DATA_DIR", str(world.settings.data_dir))  # the installation it answers for
    loaded = mlflow.pyfunc.load_model(f"models:/{world.name}@{CHAMPION}")
    customers = world.kinds["known"] + world.kinds["no_history"] + world.kinds["unknown"] + world.kinds["refused"]
    # A different n per row, as a batch-scoring caller may send.
    wanted = [N_VALUES[k % len(N_VALUES)] + k for k in range(len(customers))]
    out = loaded.predict(pd.DataFrame({"customer_id": customers, "n": wanted}))
    for customer, n in zip(customers, wanted):
        rows = out[out["customer_id"] == customer]
        got = world.api_says(customer, n, "")
        assert len(rows) == n and got["strategy"] == rows["strategy"].iloc[0]
        assert got["items"] == [(p, round(s, 6), r) for p, s, r in zip(rows["product_id"], rows["score"],
                                                                       rows["reason"])]
