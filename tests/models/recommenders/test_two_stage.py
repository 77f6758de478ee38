"""The two-stage model: reranked candidates, reasons from what drove them, configuration errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.exceptions import ConfigError, DataError
from models.recommenders import Filters, TwoStage
from models.recommenders.config import load_config
from tests.models.recommenders.conftest import TINY, tiny_two_stage

_FIT: dict[str, TwoStage] = {}


@pytest.fixture
def model(synthetic, cutoff) -> TwoStage:
    if "model" not in _FIT:
        _FIT["model"] = TwoStage(**tiny_two_stage()).fit(synthetic, cutoff=cutoff)
    return _FIT["model"]


def test_reasons_say_what_drove_each_recommendation(model):
    customers = model.customers_.external_ids[model.active_ & model.consent_][:150]
    out = model.recommend(customers, n=10, filters=Filters(in_stock_only=False))
    reasons = out["reason"]
    assert (reasons.str.len() > 0).all()
    kinds = {
        "repeat": reasons.str.startswith("you bu").any() | reasons.str.startswith("you bought").any(),
        "together": reasons.str.startswith("bought together with ").any(),
        "popular": reasons.str.startswith("popular").any(),
    }
    assert all(kinds.values()), kinds
    # A "bought together with X" names a product of the customer's own history.
    together = out[reasons.str.startswith("bought together with ")].head(20)
    names = dict(zip(model.catalog_.products.external_ids, model.catalog_.names))
    for _, row in together.iterrows():
        anchor = row["reason"].removeprefix("bought together with ")
        code = model.customers_.to_internal([row["customer_id"]])[0]
        bought = {names[p] for p in model.catalog_.products.to_external(model.bought_[code].indices)}
        history = {names[p] for p in model.catalog_.products.to_external(
            model.generators_["knn"].matrix_[code].indices)}
        assert anchor in bought | history


def test_repeat_reasons_only_for_products_the_customer_bought(model):
    customers = model.customers_.external_ids[model.active_ & model.consent_][:100]
    out = model.recommend(customers, n=10)
    repeat = out[out["reason"].str.startswith("you bu")]
    codes = model.customers_.to_internal(repeat["customer_id"])
    items = model.catalog_.products.to_internal(repeat["product_id"])
    assert (model.bought_[codes, items].A1 > 0).all()


def test_reranker_uses_customer_features_from_the_features_module(model):
    importance = model.feature_importance()
    assert "c_recency_days" in importance and "g_repeat_rank" in importance and "x_days" in importance
    assert sum(importance.values()) > 0


def test_exclude_bought_uses_the_new_products_list(model):
    customers = model.customers_.external_ids[model.active_ & model.consent_][:30]
    out = model.recommend(customers, n=10, filters=Filters(exclude_bought=True))
    assert out.groupby("customer_id").size().eq(10).all()
    assert not out["reason"].str.startswith("you bu").any()


def test_buy_again_share_splits_the_list_between_bought_and_new_products(model):
    customers = model.customers_.external_ids[model.active_ & model.consent_][:40]
    codes = model.customers_.to_internal(customers)
    many_bought = [c for c, code in zip(customers, codes) if model.bought_[code].nnz >= 5]
    assert len(many_bought) >= 10

    def bought_per_list(share: float | None) -> pd.Series:
        out = model.recommend(many_bought, n=10, filters=Filters(exclude_bought=False, buy_again_share=share))
        users = model.customers_.to_internal(out["customer_id"])
        items = model.catalog_.products.to_internal(out["product_id"])
        return pd.Series(model.bought_[users, items].A1 > 0).groupby(out["customer_id"].to_numpy()).sum()

    # Three of ten places; a list short of new products fills them with bought ones, never the other way.
    mixed = bought_per_list(0.3)
    assert (mixed >= 3).all() and (mixed == 3).mean() >= 0.8
    assert (bought_per_list(0.0) == 0).mean() >= 0.8
    ranked, only_bought = bought_per_list(None), bought_per_list(1.0)  # None: the reranker's own mix
    assert (only_bought >= ranked).all() and only_bought.sum() > ranked.sum()
    assert not (ranked == 3).all()


def test_presets_set_the_default_share_of_bought_products():
    assert TwoStage.from_config(preset="jewellery").params.buy_again_share == pytest.approx(0.1)
    assert TwoStage.from_config(preset="grocery").params.buy_again_share is None


def test_configuration_errors_name_the_problem(synthetic, cutoff):
    with pytest.raises(ConfigError, match="no candidate generator"):
        TwoStage(**tiny_two_stage(generators={})).fit(synthetic, cutoff=cutoff)
    with pytest.raises(ConfigError, match="fold_in 'nope'"):
        TwoStage(**tiny_two_stage(fold_in="nope")).fit(synthetic, cutoff=cutoff)
    with pytest.raises(ConfigError, match="unknown model"):
        bad = tiny_two_stage()
        bad["generators"]["mystery"] = {"model": "mystery", "candidates": 5}
        TwoStage(**bad)
    with pytest.raises(ConfigError, match="generator 'knn': neighbours"):
        bad = tiny_two_stage()
        bad["generators"]["knn"]["params"] = {"neighbours": "many"}
        TwoStage(**bad)


def test_data_shorter_than_the_label_window_is_a_clear_error(synthetic):
    first = synthetic["transactions"]["timestamp"].min()
    with pytest.raises(DataError):
        TwoStage(**tiny_two_stage()).fit(synthetic, cutoff=first + pd.Timedelta(days=10))


def test_shipped_configuration_builds():
    model = TwoStage.from_config(load_config())
    assert model.params.generators and model.params.fold_in in model.params.generators
    assert all(spec.params for spec in model.params.generators.values() if spec.model in ("als", "ease"))


def test_negative_sampling_keeps_every_positive_and_at_most_the_limit():
    import numpy as np

    from models.recommenders.two_stage import _sample_negatives

    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(50), rng.integers(1, 40, 50))
    labels = (rng.random(len(groups)) < 0.2).astype(np.float32)
    keep = _sample_negatives(labels, groups, 5, seed=1)
    assert keep[labels > 0].all()
    kept_negatives = np.bincount(groups[keep & (labels <= 0)], minlength=50)
    negatives = np.bincount(groups[labels <= 0], minlength=50)
    assert (kept_negatives == np.minimum(negatives, 5)).all()
    assert (keep == _sample_negatives(labels, groups, 5, seed=1)).all()


def test_features_are_the_same_at_every_cutoff_whatever_the_dtypes(synthetic, cutoff):
    # A consent flag with a missing answer comes out of the customer features as objects, without one as bools;
    # a customer who signs up late makes that differ between the label windows and the final fit.
    import numpy as np

    from models.ranking.features import CandidateFeatures, PairFeatures
    from models.recommenders.data import TrainingData

    tables = dict(synthetic)
    customers = tables["customers"].copy()
    late = customers["signup_date"] >= cutoff - pd.Timedelta(days=30)
    customers.loc[late, "consent_profiling"] = pd.NA
    tables["customers"] = customers
    names = []
    for days in (0, 90):
        data = TrainingData.build(tables, cutoff - pd.Timedelta(days=days))
        _, feature_names = CandidateFeatures(data, tables, PairFeatures()).build(np.array([0]), np.array([0]))
        names.append(feature_names)
    assert names[0] == names[1]
    model = TwoStage(**tiny_two_stage()).fit(tables, cutoff=cutoff)
    assert len(model.recommend(list(customers["customer_id"][:5]), n=5)) == 25


def test_label_windows_stop_at_the_row_budget(synthetic, cutoff, monkeypatch):
    windows = []
    original = TwoStage._training_rows

    def spy(self, tables, start, end, *args, **kwargs):
        out = original(self, tables, start, end, *args, **kwargs)
        windows.append((start, len(out[1])))
        return out

    monkeypatch.setattr(TwoStage, "_training_rows", spy)
    TwoStage(**tiny_two_stage(train_windows=3, max_train_rows=1)).fit(synthetic, cutoff=cutoff)
    assert len(windows) == 1
    windows.clear()
    TwoStage(**tiny_two_stage(train_windows=3, seasonal_window=False)).fit(synthetic, cutoff=cutoff)
    assert len(windows) == 3


def test_a_label_window_sampled_down_to_the_row_budget_is_the_last(synthetic, cutoff, monkeypatch):
    windows = []
    original_rows, original_budget = TwoStage._training_rows, TwoStage._within_budget

    def spy(self, tables, start, end, *args, **kwargs):
        out = original_rows(self, tables, start, end, *args, **kwargs)
        windows.append(len(out[1]))
        return out

    def short(self, gens, data, buyers):
        # The sizing's estimate falls short: the sample holds fewer rows than the budget.
        kept = original_budget(self, gens, data, buyers)
        return kept[:max(1, len(kept) // 2)] if len(kept) < len(buyers) else kept

    monkeypatch.setattr(TwoStage, "_training_rows", spy)
    monkeypatch.setattr(TwoStage, "_within_budget", short)
    TwoStage(**tiny_two_stage(train_windows=3, seasonal_window=False)).fit(synthetic, cutoff=cutoff)
    budget = windows[0] // 3  # a third of a whole window
    windows.clear()
    TwoStage(**tiny_two_stage(train_windows=3, seasonal_window=False, max_train_rows=budget)).fit(synthetic,
                                                                                                 cutoff=cutoff)
    assert len(windows) == 1 and windows[0] < budget


def test_a_short_log_uses_the_label_windows_it_has(synthetic, monkeypatch):
    tx = synthetic["transactions"]
    first = tx["timestamp"].min()
    cutoff = first + pd.Timedelta(days=190)  # room for two 60-day label windows with 60 days of history before
    windows = []
    original = TwoStage._training_rows

    def spy(self, tables, start, end, *args, **kwargs):
        windows.append(start)
        return original(self, tables, start, end, *args, **kwargs)

    monkeypatch.setattr(TwoStage, "_training_rows", spy)
    model = TwoStage(**tiny_two_stage(train_windows=5)).fit(synthetic, cutoff=cutoff)
    assert len(windows) == 2
    assert len(model.recommend(list(model.customers_.external_ids[:3]), n=5)) == 15


def test_the_rerankers_customer_features_follow_the_projects_feature_settings(synthetic, cutoff, tmp_path):
    from features.config import FeatureConfig
    from models.recommenders import Recommender

    weekly = FeatureConfig.from_dict({"customer": {"windows_days": [7, 45], "complaint_windows_days": [45]}})
    model = TwoStage.from_config(feature_config=weekly, **tiny_two_stage()).fit(synthetic, cutoff=cutoff)
    customer = [name for name in model.feature_names_ if name.startswith("c_")]
    assert any("45" in name for name in customer), customer
    assert not any("365" in name for name in customer), customer
    # The settings travel with the model.
    loaded = Recommender.load(model.save(tmp_path / "model"))
    assert tuple(loaded.params.features.customer.windows_days) == (7, 45)


def test_a_model_fitted_for_an_evaluation_lists_the_same_as_the_full_fit_for_its_customers(model, synthetic, cutoff,
                                                                                          tmp_path):
    customers = model.customers_.external_ids[model.active_ & model.consent_][::3]
    listed = TwoStage(**tiny_two_stage()).fit(synthetic, cutoff=cutoff, listed=customers)
    plain = Filters(exclude_bought=False, in_stock_only=False)
    ours = listed.recommend(customers, n=10, filters=plain, explain=False)
    full = model.recommend(customers, n=10, filters=plain, explain=False)
    pd.testing.assert_frame_equal(ours.drop(columns="reason"), full.drop(columns="reason"))
    others = model.customers_.external_ids[model.active_ & model.consent_][1::3][:3]
    with pytest.raises(ConfigError, match="fitted for an evaluation"):
        listed.recommend(others, n=5, explain=False)
    with pytest.raises(ConfigError, match="fitted for an evaluation"):
        listed.recommend(customers[:3], n=5)
    with pytest.raises(ConfigError, match="not saved"):
        listed.save(tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_a_label_window_larger_than_the_row_budget_learns_from_a_share_of_its_customers(synthetic, cutoff):
    import re

    def reranker_rows(model):
        lap = next(k for k in model.fit_seconds_ if k.startswith("reranker ("))
        return int(re.search(r"\(([\d,]+) candidates", lap).group(1).replace(",", ""))

    full = TwoStage(**tiny_two_stage(train_windows=1, seasonal_window=False)).fit(synthetic, cutoff=cutoff)
    budget = reranker_rows(full) // 4
    small = TwoStage(**tiny_two_stage(train_windows=1, seasonal_window=False, max_train_rows=budget)).fit(synthetic, cutoff=cutoff)
    assert budget * 0.5 <= reranker_rows(small) <= budget * 1.5
    assert len(small.recommend(small.customers_.external_ids[:20], n=5)) == 100


def test_reasons_worked_out_per_block_of_customers_are_those_of_one_block(model, synthetic, cutoff, monkeypatch):
    from models.recommenders import two_stage

    monkeypatch.setattr(two_stage, "_REASON_PLACES", 500)  # blocks of a few customers
    blocked = TwoStage(**tiny_two_stage()).fit(synthetic, cutoff=cutoff)
    for kind, lists in model.serve_.items():
        for field, values in lists.items():
            np.testing.assert_array_equal(blocked.serve_[kind][field], values, err_msg=f"{kind} {field}")


def test_label_windows_step_back_by_their_stride(synthetic, cutoff):
    first = synthetic["transactions"]["timestamp"].min()
    side_by_side = TwoStage(**tiny_two_stage(train_windows=3, seasonal_window=False))._label_windows(cutoff, first)
    assert [cutoff - s for s in side_by_side] == [pd.Timedelta(days=d) for d in (60, 120, 180)]
    overlapping = TwoStage(**tiny_two_stage(train_windows=3, seasonal_window=False,
                                            window_stride_days=20))._label_windows(cutoff, first)
    assert [cutoff - s for s in overlapping] == [pd.Timedelta(days=d) for d in (60, 80, 100)]


def test_overlapping_label_windows_hold_out_customers_not_groups(synthetic, cutoff, monkeypatch):
    from models.ranking.lambdarank import LambdaRanker

    keys = []
    original = LambdaRanker.fit

    def spy(self, features, labels, groups, *args, held_out_by=None, **kwargs):
        keys.append((groups, held_out_by))
        return original(self, features, labels, groups, *args, held_out_by=held_out_by, **kwargs)

    monkeypatch.setattr(LambdaRanker, "fit", spy)
    TwoStage(**tiny_two_stage(train_windows=2, seasonal_window=False, window_stride_days=30)).fit(synthetic,
                                                                                                  cutoff=cutoff)
    groups, by = keys[-1]
    assert by is not None and len(np.unique(by)) < len(np.unique(groups))  # customers with a group in both windows
    TwoStage(**tiny_two_stage(train_windows=2, seasonal_window=False)).fit(synthetic, cutoff=cutoff)
    assert keys[-1][1] is None


def test_a_reranker_ensemble_is_saved_and_loaded_whole(synthetic, cutoff, tmp_path):
    from models.recommenders import Recommender

    ranker = {**tiny_two_stage()["ranker"], "ensemble": 2}
    model = TwoStage(**tiny_two_stage(train_windows=1, seasonal_window=False, ranker=ranker)).fit(synthetic,
                                                                                                 cutoff=cutoff)
    assert len(model.ranker_.boosters_) == 2
    loaded = Recommender.load(model.save(tmp_path / "model"))
    assert len(loaded.ranker_.boosters_) == 2
    customers = list(model.customers_.external_ids[:20])
    pd.testing.assert_frame_equal(loaded.recommend(customers, n=10), model.recommend(customers, n=10))
    sample = np.random.default_rng(0).random((5, len(model.feature_names_))).astype(np.float32)
    np.testing.assert_allclose(loaded.ranker_.predict(sample), model.ranker_.predict(sample), rtol=1e-6)


def test_a_fit_whose_first_label_window_is_an_earlier_fits_data_takes_its_generators(synthetic, cutoff, monkeypatch):
    """The training job's holdout fits the generators at the start of the last window; the fit at the end of the
    data learns from that very window: it takes them, and lists exactly what fitting them again would."""
    from models.recommenders import Recommender
    from models.recommenders.data import TrainingData, tables_before
    from models.recommenders.two_stage import GeneratorFits

    tables = tables_before(synthetic, cutoff)  # the data ends at the cutoff, with what the shop had launched
    products = tables["products"]
    tables["products"] = products[~(pd.to_datetime(products["launched_at"]) >= cutoff)]
    fitted = []
    original = Recommender.fit_data

    def spy(self, data, *args, **kwargs):
        fitted.append(data.cutoff)
        return original(self, data, *args, **kwargs)

    monkeypatch.setattr(Recommender, "fit_data", spy)
    params = tiny_two_stage(seasonal_window=False)
    fits = GeneratorFits()
    holdout_start = cutoff - pd.Timedelta(days=params["window_days"])
    TwoStage(**params).fit(tables, cutoff=holdout_start, fits=fits,
                           listed=tables["transactions"]["customer_id"].unique()[:50])
    fitted.clear()
    shared = TwoStage(**params).fit(tables, cutoff=cutoff, fits=fits)
    taking = list(fitted)
    fitted.clear()
    alone = TwoStage(**params).fit(tables, cutoff=cutoff)
    assert holdout_start in fitted and holdout_start not in taking and len(taking) < len(fitted)
    assert shared.ranker_.to_text() == alone.ranker_.to_text()
    for kind, lists in alone.serve_.items():
        for field, values in lists.items():
            np.testing.assert_array_equal(shared.serve_[kind][field], values, err_msg=f"{kind} {field}")


def test_kept_generators_go_to_a_fit_on_the_very_same_data_only_and_once(synthetic, cutoff):
    from models.recommenders.data import TrainingData
    from models.recommenders.two_stage import GeneratorFits

    data = TrainingData.build(synthetic, cutoff)
    same = TrainingData.build(synthetic, cutoff)
    later = TrainingData.build(synthetic, cutoff + pd.Timedelta(days=1))
    fits = GeneratorFits()
    fits.keep(data, None, {"fit": "model"})
    assert fits.take(later, None) == {}
    assert fits.take(same, None) == {"fit": "model"}
    assert fits.take(same, None) == {}


def test_saved_lists_are_files_of_their_own_read_back_memory_mapped(model, tmp_path):
    """The precomputed lists (gigabytes at a million customers) are not copied into the state archive, and a load
    maps them instead of reading them into memory; what the loaded model answers is the fitted model's."""
    import zipfile

    from models.recommenders import Recommender
    from models.recommenders.base import STATE_FILE
    from models.recommenders.two_stage import LISTS_DIR

    path = model.save(tmp_path / "model")
    with zipfile.ZipFile(path / STATE_FILE) as archive:
        assert not [name for name in archive.namelist() if name.startswith("model_")]
    expected = {f"{kind}_{field}.npy" for kind, lists in model.serve_.items() for field in lists}
    assert {file.name for file in (path / LISTS_DIR).iterdir()} == expected
    loaded = Recommender.load(path)
    for kind, lists in model.serve_.items():
        for field, values in lists.items():
            assert isinstance(loaded.serve_[kind][field], np.memmap), (kind, field)
            np.testing.assert_array_equal(loaded.serve_[kind][field], values, err_msg=f"{kind} {field}")
    customers = list(model.customers_.external_ids[:30])
    pd.testing.assert_frame_equal(loaded.recommend(customers, n=10), model.recommend(customers, n=10))
    # Saved again where it was loaded from, a mapped list is its own file: nothing is truncated under the map;
    # a list another model left in the folder is not read as this one's.
    np.save(path / LISTS_DIR / "other_items.npy", np.zeros(3, dtype=np.int32))
    loaded.save(path)
    assert {file.name for file in (path / LISTS_DIR).iterdir()} == expected
    pd.testing.assert_frame_equal(Recommender.load(path).recommend(customers, n=10),
                                  model.recommend(customers, n=10))


def test_a_model_saved_with_its_lists_in_the_state_archive_still_loads(model, tmp_path):
    from models.recommenders import Recommender
    from models.recommenders.base import STATE_FILE
    from models.recommenders.two_stage import LISTS_DIR

    path = model.save(tmp_path / "model")
    # The layout before the lists had files of their own: every list field in state.npz as model_<kind>_<field>.
    with np.load(path / STATE_FILE) as npz:
        arrays = {key: npz[key] for key in npz.files}
    for file in sorted((path / LISTS_DIR).iterdir()):
        arrays[f"model_{file.stem}"] = np.load(file)
        file.unlink()
    (path / LISTS_DIR).rmdir()
    np.savez(path / STATE_FILE, **arrays)
    customers = list(model.customers_.external_ids[:30])
    pd.testing.assert_frame_equal(Recommender.load(path).recommend(customers, n=10),
                                  model.recommend(customers, n=10))


def test_a_fits_lists_go_to_files_of_its_own_and_are_those_held_in_memory(model, synthetic, cutoff, tmp_path,
                                                                           monkeypatch):
    """The lists and reasons are written block by block into files private to the fit (never all in memory);
    the lists, the saved files and the serving tables are byte for byte those of lists held in memory."""
    import os
    import stat

    from models.recommenders.list_files import ListFile
    from models.recommenders.two_stage import LISTS_DIR
    from training.export import export_recommender

    folders = {values.folder.path for lists in model.serve_.values() for values in lists.values()
               if isinstance(values, ListFile)}
    assert len(folders) == 1 and all(isinstance(v, ListFile) for lists in model.serve_.values() for v in lists.values())
    assert stat.S_IMODE(os.stat(folders.pop()).st_mode) == 0o700
    monkeypatch.setattr(TwoStage, "_spilled_lists", TwoStage._empty_lists)
    in_memory = TwoStage(**tiny_two_stage()).fit(synthetic, cutoff=cutoff)
    assert isinstance(in_memory.serve_["all"]["items"], np.ndarray)
    assert set(in_memory.serve_) == set(model.serve_)
    for kind, lists in in_memory.serve_.items():
        assert list(lists) == list(model.serve_[kind])
        for field, values in lists.items():
            np.testing.assert_array_equal(model.serve_[kind][field], values, err_msg=f"{kind} {field}")
    saved, held = model.save(tmp_path / "files"), in_memory.save(tmp_path / "memory")
    for file in sorted((held / LISTS_DIR).iterdir()):
        assert (saved / LISTS_DIR / file.name).read_bytes() == file.read_bytes(), file.name
    export_recommender(model, tmp_path / "files-serving", "beauty", "check", batch=97)
    export_recommender(in_memory, tmp_path / "memory-serving", "beauty", "check", batch=97)
    for file in sorted((tmp_path / "memory-serving").glob("*.parquet")):
        assert (tmp_path / "files-serving" / file.name).read_bytes() == file.read_bytes(), file.name


def test_generators_fitted_side_by_side_are_those_fitted_one_after_the_other(synthetic, cutoff):
    """The generators of a fit run on a thread per core, with the caller's work beside them: each is the model
    fitted alone, bit for bit, generators differing in scoring only still share one fit, and the caller gets
    what its work returned."""
    from threadpoolctl import threadpool_limits

    from models.recommenders.data import TrainingData, tables_before
    from models.recommenders.two_stage import _vocabularies

    generators = {**tiny_two_stage()["generators"],
                  "als": {"model": "als", "candidates": 20, "params": TINY["als"]},
                  "tifu": {"model": "tifu_knn", "candidates": 20, "params": {"neighbours": 20, "alpha": 0.7}},
                  "tifu_neighbours": {"model": "tifu_knn", "candidates": 10,
                                      "params": {"neighbours": 20, "alpha": 0.0}}}
    tables = tables_before(synthetic, cutoff)
    fitted = {}
    for workers in (1, 3):
        model = TwoStage(**tiny_two_stage(generators=generators, workers=workers))
        model._vocab = _vocabularies(tables)
        attributes = model._attribute_models(tables, [cutoff], cutoff)
        data = TrainingData.build(tables, cutoff)
        # BLAS on one thread, as the side-by-side fits hold it and OPENBLAS_NUM_THREADS=1 runs it: EASE's
        # inverse rounds differently on several BLAS threads, whatever the generators' threads.
        with threadpool_limits(1, "blas"):
            fitted[workers] = model._fit_generators(data, None, attributes, tables,
                                                    alongside=lambda data=data: ("customers", data.n_users))
    (one, one_extra), (three, three_extra) = fitted[1], fitted[3]
    assert one_extra == three_extra == ("customers", data.n_users)
    assert list(three) == list(one) == list(generators)
    for name, gen in one.items():
        assert type(three[name]) is type(gen) and three[name].get_params() == gen.get_params()
        mine, theirs = _fitted_arrays(gen), _fitted_arrays(three[name])
        assert set(mine) == set(theirs) and len(mine) > 3, name
        for key, value in mine.items():
            np.testing.assert_array_equal(theirs[key], value, err_msg=f"{name} {key}")
    assert three["tifu_neighbours"].vectors_ is three["tifu"].vectors_  # one fit, two scorings
    assert three["tifu_neighbours"].params.alpha == 0.0 and three["tifu"].params.alpha == 0.7


def _fitted_arrays(model) -> dict[str, np.ndarray]:
    """Every array a fitted recommender learned (its saved state and the fallbacks every model has), sparse ones
    by their parts."""
    import scipy.sparse as sp

    arrays = {**model._state(), "bought": model.bought_, "active": model.active_,
              "fallback_score": model.fallback_score_, "fallback_order": model.fallback_order_,
              "region_score": model.region_score_, "region_ok": model.region_ok_}
    out = {}
    for key, value in arrays.items():
        if sp.issparse(value):
            value = sp.csr_matrix(value)
            out.update({f"{key}.{part}": getattr(value, part) for part in ("indptr", "indices", "data")})
        else:
            out[key] = np.asarray(value)
    return out
