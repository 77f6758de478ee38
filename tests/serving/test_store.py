"""Compiling serving folders, assembling snapshots, and the model store against a real registry."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.layout import ArtifactError, find_serving_folder, read_manifest
from serving.compile import compile_folder
from serving.compiled import RecommenderPart, ScoresPart
from features.privacy import pseudonymise
from serving.erasure import Erasures
from serving.metrics import Metrics
from serving.recommend import lists_of
from serving.snapshot import ModelInfo, assemble
from serving.store import ModelStore
from tests.serving.helpers import layout_tables, register, settings_for, write_layouts


@pytest.fixture(scope="module")
def tables():
    return layout_tables()


def compiled(tmp_path, tables, kind, installation=None):
    folders = write_layouts(tmp_path / "layouts", {kind: tables[kind]}, installation=installation)
    compile_folder(kind, folders[kind], tmp_path / f"{kind}.compiled")
    return (RecommenderPart if kind == "recommender" else ScoresPart).load(tmp_path / f"{kind}.compiled")


def test_recommender_arrays_match_the_tables(tmp_path, tables):
    rec = compiled(tmp_path, tables, "recommender")
    recs = tables["recommender"]["recommendations"]
    for c in ("C0000", "C0017"):
        row = rec.customer_ids.index(c)
        s, e = rec.a["rec_offsets"][row:row + 2]
        ranked = lists_of(rec).ranked(row)
        items, scores, bought_before = ranked.items, ranked.scores, ranked.bought
        expected = recs[recs.customer_id == c].sort_values("rank")
        assert [rec.product_ids[i] for i in items] == expected.product_id.tolist()
        assert scores.tolist() == pytest.approx(expected.score.tolist())
        bought = set(tables["recommender"]["bought"].query("customer_id == @c").product_id)
        assert [rec.product_ids[i] in bought for i in items] == bought_before.tolist()
        # Stored with what the default filters allow first: in stock and not bought, in rank order.
        ok = [rec.product_ids[i] for i in rec.a["rec_items"][s:s + rec.a["rec_ok_count"][row]]]
        assert ok == [p for p in expected.product_id if p not in bought and int(p[1:]) % 7 != 0]
    assert rec.pop_groups[("region", "Leeds")] >= 0 and rec.manifest["kind"] == "recommender"


def test_unsorted_recommendations_and_unlisted_products_are_handled(tmp_path, tables):
    t = {**tables["recommender"]}
    t["recommendations"] = t["recommendations"].sample(frac=1, random_state=1)
    t["products"] = t["products"][t["products"].product_id != "P005"]
    rec = compiled(tmp_path, {"recommender": t}, "recommender")
    row = rec.customer_ids.index("C0001")
    expected = tables["recommender"]["recommendations"].query("customer_id == 'C0001'").sort_values("rank")
    assert [rec.product_ids[i] for i in lists_of(rec).ranked(row).items] == expected.product_id.tolist()
    p5 = rec.product_index["P005"]
    assert not rec.a["prod_in_stock"][p5] and rec.product_names[p5] is None  # not in the catalogue: hidden


def test_scores_columns_keep_types_and_nulls(tmp_path, tables):
    part = compiled(tmp_path, tables, "clv")
    rows = np.array([0, 1])
    cols = part.scores.columns
    assert cols["membership_tier"].take(rows) == ["gold", None]
    assert cols["r_score"].take(rows) == [1, 2]
    assert part.profiles.columns["last_purchase"].take(rows) == ["2023-12-01T00:00:00", "2023-12-01T01:00:00"]
    assert part.profiles.columns["consent_profiling"].take(np.array([3])) == [False]


@pytest.mark.parametrize("kind, file, column", [("churn", "scores.parquet", "risk_band"),
                                                ("recommender", "similar.parquet", "reason")])
def test_a_missing_column_names_file_and_column(tmp_path, tables, kind, file, column):
    folder = write_layouts(tmp_path, {kind: tables[kind]})[kind]
    frame = pd.read_parquet(folder / file).drop(columns=[column])
    frame.to_parquet(folder / file)
    with pytest.raises(ArtifactError, match=f"{file}: column '{column}' is missing"):
        read_manifest(folder, kind)


def test_wrong_kind_and_missing_manifest(tmp_path, tables):
    folder = write_layouts(tmp_path, {"churn": tables["churn"]})["churn"]
    with pytest.raises(ArtifactError, match="kind is 'churn', expected 'clv'"):
        read_manifest(folder, "clv")
    with pytest.raises(ArtifactError, match="manifest.json not found"):
        find_serving_folder(tmp_path / "empty-dir-that-is-missing")


def test_snapshot_joins_parts_and_computes_value_at_risk(tmp_path, tables):
    installation = settings_for(tmp_path)
    parts = {k: compiled(tmp_path / k, tables, k, installation) for k in ("recommender", "churn", "clv")}
    models = {k: ModelInfo(k, f"clientele-{k}", "1", None, "now", p.manifest) for k, p in parts.items()}
    snap = assemble(models, parts, set(), installation.identities())
    index = {own: snap.customer_index[pseudonymise(own, installation.pseudonym_key)]
             for own in ("C0002", "C0003", "C0042")}
    code = index["C0002"]
    assert snap.pseudonyms[code] != "C0002" and snap.own_ids[code] == "C0002"
    scores = snap.scores_of(code)
    churn = tables["churn"]["scores"].set_index("customer_id").loc["C0002"]
    clv = tables["clv"]["scores"].set_index("customer_id").loc["C0002"]
    assert scores["value_at_risk"] == pytest.approx(churn.churn_probability * clv.clv)
    assert not snap.consent[index["C0003"]] and snap.consent[code]
    assert snap.profile_of(index["C0042"]) is None  # known to the recommender only


def test_store_swaps_when_the_champion_moves_and_survives_a_broken_version(tmp_path):
    settings = settings_for(tmp_path)
    tables = layout_tables()
    folders = write_layouts(tmp_path / "v1", tables, installation=settings)
    for kind, folder in folders.items():
        register(settings, kind, folder)
    store = ModelStore(settings, Erasures(settings.erasure_file, settings.pseudonym_key, settings.identities()),
                       Metrics())
    assert store.check()["changed"] and store.ready
    first = store.snapshot
    assert store.check()["changed"] is False and store.snapshot is first

    t2 = layout_tables(tag="v2", seed=1)
    folder = write_layouts(tmp_path / "v2", {"churn": t2["churn"]}, installation=settings)["churn"]
    register(settings, "churn", folder)
    assert store.check()["changed"]
    second = store.snapshot
    assert second.label("churn") == "churn:2" and second.recommender is first.recommender  # reused, not reloaded
    assert first.label("churn") == "churn:1"  # a request holding the old snapshot still sees one version

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "manifest.json").write_text('{"kind": "churn", "format_version": 99}')
    register(settings, "churn", broken)
    with pytest.raises(ArtifactError, match="format_version 99"):
        store.check()
    assert store.snapshot is second and "format_version 99" in store.last_error


def test_the_stored_order_shortcut_answers_like_the_general_path(tmp_path, tables):
    from models.recommenders.filters import Filters
    from serving.erasure import Erasures
    from serving.recommend import RecentEvent, recommend
    from serving.visibility import customer_view

    installation = settings_for(tmp_path)
    parts = {k: compiled(tmp_path / k, tables, k, installation) for k in ("recommender", "churn", "clv")}
    models = {k: ModelInfo(k, f"clientele-{k}", "1", None, "now", p.manifest) for k, p in parts.items()}
    snap = assemble(models, parts, set(), installation.identities())
    old = [RecentEvent(ts=0.0, event_type="view", product_id="P001")]  # before the cutoff: ignored, general path
    erasures = Erasures(tmp_path / "erasures.txt", installation.pseudonym_key)
    for customer in snap.own_ids.tolist():
        view = customer_view(snap, erasures, customer, consent_when_unknown=True)
        for n in (1, 5, 13, 18, 30):
            assert recommend(snap, view, n, Filters()) == recommend(snap, view, n, Filters(), old)


def test_a_version_pseudonymised_under_another_key_or_with_own_ids_is_refused(tmp_path):
    """Served under a different key, every customer would be a stranger: the store refuses the version, and
    one from before pseudonymisation (format 1, own ids), instead of answering everyone with popular lists."""
    settings = settings_for(tmp_path / "served")
    elsewhere = settings_for(tmp_path / "elsewhere")  # another installation: its own random key
    tables = layout_tables()
    folder = write_layouts(tmp_path / "other-key", {"churn": tables["churn"]}, installation=elsewhere)["churn"]
    register(settings, "churn", folder)
    store = ModelStore(settings, Erasures(settings.erasure_file, settings.pseudonym_key), Metrics())
    with pytest.raises(ArtifactError, match="another pseudonym key"):
        store.check()
    old = write_layouts(tmp_path / "own-ids", {"churn": tables["churn"]}, installation=settings)["churn"]
    manifest = (old / "manifest.json")
    manifest.write_text(manifest.read_text().replace('"format_version": 2', '"format_version": 1'))
    register(settings, "churn", old)
    with pytest.raises(ArtifactError, match="before customer ids were pseudonymised"):
        store.check()
    assert not store.ready
