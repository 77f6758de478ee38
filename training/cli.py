"""The `clientele` command line: one Typer app whose subcommands grow with the product."""

from __future__ import annotations

import functools
import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer
from rich.console import Console
from rich.table import Table

from features import storage
from features.exceptions import ClienteleError
from features.settings import get_settings

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Clientele: recommendations, churn and customer value for retailers.")
console = Console(stderr=True)

# Locations are text, not Path: a URL (s3://bucket/export, file:///srv/data) must keep its '//'.
DataOpt = Annotated[str, typer.Option("--data", help="Transactions file or a folder with one file per table (a "
                                                     "path, or a URL such as s3://bucket/export).")]
MappingOpt = Annotated[Optional[str], typer.Option("--mapping", help="Column-mapping YAML (configs/datasets/), a "
                                                                     "path or a URL.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")]
TestDaysOpt = Annotated[int, typer.Option("--test-days", min=1, help="Length of the test window in days.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars (they are shown on a terminal "
                                                             "only).")]


def user_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn errors meant for the user into one line on stderr and exit status 2 (never a traceback)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ClienteleError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise typer.Exit(code=exc.exit_code) from None

    return wrapper


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, default=str) + "\n")


@app.command()
@user_errors
def validate(
    data: DataOpt,
    mapping: MappingOpt = None,
    json_output: JsonOpt = False,
    rejects: Annotated[Optional[Path], typer.Option(help="Folder for rejects files "
                                                         "(default: <data_dir>/rejects/<dataset>).")] = None,
) -> None:
    """Load, map and validate a dataset; report what was kept and write every rejected row with its reason."""
    from features.io import load_dataset

    started = time.perf_counter()
    settings = get_settings()
    dataset = load_dataset(data, mapping, erasures=settings.erasures())
    report = dataset.report()
    name = storage.dataset_name(data)
    report["rejects_files"] = dataset.write_rejects(rejects or settings.rejects_dir(name))
    report["seconds"] = round(time.perf_counter() - started, 2)
    if json_output:
        _print_json(report)
        return
    _print_report(report)


def _print_report(report: dict[str, Any]) -> None:
    out = Console()
    out.print(f"[bold]{report['source']}[/] (mapping: {report['mapping']})")
    summary = Table(show_header=False, box=None)
    for key in ("rows_read", "rows_kept", "rows_rejected", "erased_rows", "customers", "products", "orders",
                "duplicates"):
        if key in report:
            summary.add_row(key.replace("_", " "), f"{report[key]:,}")
    summary.add_row("date range", f"{report['date_range']['start']} .. {report['date_range']['end']}")
    summary.add_row("returns", f"{report['returns']['rows']:,} rows, amount {report['returns']['amount']:,.2f}")
    out.print(summary)
    tables = Table(title="tables")
    for col in ("table", "read", "kept", "rejected", "rejected by reason"):
        tables.add_column(col)
    for name, t in report["tables"].items():
        reasons = ", ".join(f"{k}: {v:,}" for k, v in t["rejected_by_reason"].items()) or "-"
        tables.add_row(name, f"{t['rows_read']:,}", f"{t['rows_kept']:,}", f"{t['rows_rejected']:,}", reasons)
    out.print(tables)
    caps = report["capabilities"]
    out.print("supports: " + ", ".join(k for k, v in caps.items() if v))
    missing = [k for k, v in caps.items() if not v]
    if missing:
        out.print("not supported by this data: " + ", ".join(missing))
    for note in report["notes"]:
        out.print(f"note: {note}")
    for table, path in report["rejects_files"].items():
        out.print(f"rejects ({table}): {path}")


@app.command()
@user_errors
def generate(
    preset: Annotated[str, typer.Option(help="Industry preset: jewellery, beauty or grocery.")] = "beauty",
    customers: Annotated[int, typer.Option(min=1, help="Number of customers.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same data.")] = 0,
    out: Annotated[Path, typer.Option(help="Output folder (one Parquet file per table).")] = Path("data/synthetic"),
    linked_share: Annotated[float, typer.Option("--linked-share", min=0.0, max=1.0,
                                                help="Share of the app buyers with an app id of their own, linked "
                                                     "to them by an identities table.")] = 0.0,
) -> None:
    """Generate a realistic synthetic retail dataset (all six tables, past campaigns included) in canonical form."""
    from features.synthetic import generate as generate_tables
    from features.synthetic import with_channel_ids, write_tables

    started = time.perf_counter()
    with console.status(f"generating {customers:,} {preset} customers"):
        tables = generate_tables(preset, customers=customers, seed=seed)
        if linked_share:
            tables, _ = with_channel_ids(tables, linked_share, seed)
        paths = write_tables(tables, out)
    for path in paths:
        table = Path(path).name.split(".")[0]
        console.print(f"{path}: {len(tables[table]):,} rows")
    console.print(f"done in {time.perf_counter() - started:.1f} s")


@app.command()
@user_errors
def features(
    data: DataOpt,
    as_of: Annotated[str, typer.Option("--as-of", help="Cutoff date: features use data strictly before it.")],
    out: Annotated[str, typer.Option(help="Output Parquet file (one row per customer), a path or a URL.")],
    mapping: MappingOpt = None,
    horizon: Annotated[Optional[int], typer.Option(min=1, help="Churn horizon in days (default: the preset's).")] = None,
    preset: Annotated[str, typer.Option(help="Industry preset giving the default horizon.")] = "beauty",
    engine: Annotated[str, typer.Option(help="pandas (default) or dask.")] = "pandas",
    scheduler: Annotated[Optional[str], typer.Option(help="Dask scheduler address (default: a LocalCluster).")] = None,
    workers: Annotated[Optional[int], typer.Option(min=1, help="LocalCluster worker processes.")] = None,
    config: Annotated[Optional[Path], typer.Option(help="Feature config YAML (default configs/features.yaml).")] = None,
) -> None:
    """Write point-in-time customer features as of a date (and the churn label when the data reaches past
    the horizon) as Parquet."""
    import pandas as pd

    from features.config import FeatureConfig
    from features.exceptions import ConfigError
    from features.presets import load_preset

    try:
        cutoff = pd.Timestamp(as_of)
    except ValueError:
        raise ConfigError(f"--as-of: cannot read {as_of!r} as a date (use YYYY-MM-DD)") from None
    if engine not in ("pandas", "dask"):
        raise ConfigError(f"--engine: must be pandas or dask, not {engine!r}")
    horizon = horizon or int(load_preset(preset)["churn"]["horizon_days"])
    feature_config = FeatureConfig.load(config)
    started = time.perf_counter()
    name = storage.dataset_name(data)
    settings = get_settings()
    rejects = settings.rejects_dir(name)
    if engine == "dask":
        from features.dask_engine import features_on_dask

        frame, reports = features_on_dask(data, mapping, cutoff, horizon, feature_config, scheduler=scheduler,
                                          rejects_dir=rejects, workers=workers, erasures=settings.erasures())
    else:
        from features.io import load_dataset
        from features.pipeline import feature_frame

        dataset = load_dataset(data, mapping, erasures=settings.erasures())
        dataset.write_rejects(rejects)
        reports = dataset.reports
        frame = feature_frame(dataset.tables, cutoff, horizon, feature_config)
    storage.write_parquet(frame, storage.as_location(out))
    tx = reports["transactions"]
    labelled = "with" if "churned" in frame.columns else "without (the data ends before the horizon does)"
    console.print(f"{out}: {len(frame):,} customers x {frame.shape[1] - 1} columns as of {cutoff.date()}, "
                  f"{labelled} churn label ({horizon} days); {tx.rows_kept:,} of {tx.rows_read:,} transactions "
                  f"kept; {engine} engine, {time.perf_counter() - started:.1f} s")


@app.command()
@user_errors
def train(
    config: Annotated[Optional[Path], typer.Option(help="Training config YAML (default configs/train.yaml).")] = None,
    data: Annotated[Optional[str], typer.Option(help="Dataset, a path or a URL (default: the synthetic demo "
                                                     "data).")] = None,
    mapping: MappingOpt = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed for every model (default: the config's).")] = None,
    engine: Annotated[Optional[str], typer.Option(help="dask: train the churn model on a Dask cluster through "
                                                       "LightGBM's Dask API (Parquet data) and rerank every "
                                                       "customer's recommendations there.")] = None,
    scheduler: Annotated[Optional[str], typer.Option(help="Dask scheduler address (default: a LocalCluster).")] = None,
    quiet: QuietOpt = False,
) -> None:
    """Train, evaluate on the time holdout, log to MLflow, register, and promote what beats the champion."""
    from features.progress import bars
    from training.config import TrainConfig
    from training.train import run_training

    train_config = TrainConfig.load(config, data=data, mapping=mapping, seed=seed, engine=engine,
                                    scheduler=scheduler)
    settings = get_settings()
    # Each step is a line of the display; long loops inside a step add their own bars (counts and time left).
    with bars(console, enabled=not quiet) as bar:
        steps: list[Any] = []

        def report(message: str) -> None:
            if bar is None:
                return
            if steps:
                bar.update(steps[-1], total=1, completed=1)
            steps.append(bar.add_task(message, total=None))

        result = run_training(train_config, settings, progress=report)
        if steps:
            bar.update(steps[-1], total=1, completed=1)
    _print_training_summary(result, settings)


def _print_training_summary(result: Any, settings: Any) -> None:
    out = Console()
    table = Table(title=f"run {result.run_id} ({result.seconds:.0f} s)")
    for col in ("model", "metric", "value", "champion was", "version", "alias"):
        table.add_column(col)
    for d in result.decisions:
        before = "-" if d.champion_value is None else f"v{d.champion_version} {d.champion_value:.4f}"
        table.add_row(d.kind, d.metric, f"{d.value:.4f}", before, d.version, d.alias)
    out.print(table)
    for d in result.decisions:
        out.print(f"{d.kind}: {d.reason}")
    for kind, values in result.metrics.items():
        shown = ", ".join(f"{k} {v:.4f}" for k, v in values.items() if isinstance(v, float) and k != "fit_seconds")
        out.print(f"holdout {kind}: {shown}")
    if result.holdout.get("sampled"):
        out.print(f"holdout customers: {result.holdout['sampling']}, of {result.holdout['customers']:,} "
                  f"(evaluation.max_customers {result.holdout['max_customers']:,})")
    out.print(f"MLflow: {settings.tracking_uri}")


@app.command()
@user_errors
def models() -> None:
    """List registered model versions with their aliases and key metric."""
    from training.register import list_models, setup_tracking

    settings = get_settings()
    setup_tracking(settings, "clientele")
    rows = list_models(settings)
    if not rows:
        console.print("no registered models yet: run `clientele train`")
        return
    table = Table()
    for col in ("model", "version", "aliases", "metric", "value", "decision"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["model"], r["version"], ", ".join(r["aliases"]) or "-", r["metric"] or "-",
                      "-" if r["value"] is None else f"{r['value']:.4f}", r["decision"] or "-")
    Console().print(table)


@app.command()
@user_errors
def promote(
    model: Annotated[str, typer.Argument(help="recommender, churn, clv or uplift (or the full registered name).")],
    version: Annotated[str, typer.Argument(help="Version number to make champion.")],
) -> None:
    """Make a version the champion by hand (the previous champion becomes challenger)."""
    from training.register import MODEL_KINDS, setup_tracking
    from training.register import promote as promote_version

    settings = get_settings()
    setup_tracking(settings, "clientele")
    name = settings.model_name(model) if model in MODEL_KINDS else model
    Console().print(promote_version(name, version, settings))


@app.command()
@user_errors
def score(
    out: Annotated[str, typer.Option(help="Output folder (Parquet and CSV), a path or a URL.")],
    data: Annotated[Optional[str], typer.Option("--data", help="Rescore this data as of its end; without it "
                                                 "the champions' precomputed tables are exported.")] = None,
    mapping: MappingOpt = None,
    engine: Annotated[str, typer.Option(help="pandas (default) or dask: recommendations and --data scoring "
                                             "(Parquet input) per customer partition on a cluster.")] = "pandas",
    scheduler: Annotated[Optional[str], typer.Option(help="Dask scheduler address (default: a LocalCluster).")] = None,
    n: Annotated[int, typer.Option("--n", min=1, max=1000, help="Recommendations per customer.")] = 10,
    lang: Annotated[str, typer.Option("--lang", help="Language of reasons and labels: en or zh-CN (codes stay "
                                                     "the same).")] = "en",
    channel: Annotated[Optional[str], typer.Option(help="Rank recommendations for this channel: store, online or "
                                                        "app.")] = None,
    store_id: Annotated[Optional[str], typer.Option("--store-id", help="Recommend from this store's shelf (a "
                                                                       "store campaign); see --availability.")] = None,
    availability: Annotated[str, typer.Option(help="With --store-id: in_store (only what the store has) or "
                                                   "order_online (the rest too, marked).")] = "in_store",
) -> None:
    """Write the champions' recommendations and customer scores for every customer, for CRM campaigns."""
    import tempfile
    from contextlib import ExitStack

    import pandas as pd

    from features.exceptions import ConfigError
    from features.i18n import check_locale, localise_frame
    from training.register import setup_tracking
    from training.score import (ScoringModels, bucket_scores, champion_recommendations, download_champions,
                                name_customers, precomputed_scores, score_customers, write_outputs)

    if engine not in ("pandas", "dask"):
        raise ConfigError(f"--engine: must be pandas or dask, not {engine!r}")
    check_locale(lang)
    from models.recommenders.filters import AVAILABILITY, CHANNELS, Filters

    if channel is not None and channel not in CHANNELS:
        raise ConfigError(f"--channel: must be one of {', '.join(CHANNELS)}, not {channel!r}")
    if availability not in AVAILABILITY:
        raise ConfigError(f"--availability: must be one of {', '.join(AVAILABILITY)}, not {availability!r}")
    filters = Filters(channel=channel, store_id=store_id, availability=availability)
    settings = get_settings()
    setup_tracking(settings, "clientele")
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        with console.status("downloading the champions"):
            champions = download_champions(settings, Path(tmp))
        client = None
        if engine == "dask":
            from features.dask_engine import dask_client

            client = stack.enter_context(dask_client(scheduler))
        frames: dict[str, pd.DataFrame] = {}
        identities = settings.identities()
        unnamed = 0
        if "recommender" in champions.folders:
            with console.status(f"recommending for every customer ({engine})"):
                frames["recommendations"], missing = name_customers(
                    champion_recommendations(champions, n, filters=filters, client=client), identities)
                unnamed = max(unnamed, missing)
        if data is None:
            frames["customer_scores"], missing = name_customers(precomputed_scores(champions), identities)
            unnamed = max(unnamed, missing)
        else:
            models_ = ScoringModels.from_champions(champions)
            with console.status(f"scoring every customer in {data} ({engine})"):
                if client is not None:
                    from features.dask_engine import run_bucketed

                    run = run_bucketed(data, mapping, bucket_scores, {"models": models_}, client=client,
                                       erasures=settings.erasures())
                    scores_ = pd.concat([r for r in run.results if len(r)], ignore_index=True)
                else:
                    from features.io import load_dataset
                    from features.labels import data_end

                    tables = load_dataset(data, mapping, erasures=settings.erasures()).tables
                    scores_ = score_customers(tables, data_end(tables).normalize() + pd.Timedelta(days=1),
                                              models_)
            frames["customer_scores"] = scores_.sort_values("value_at_risk", ascending=False,
                                                            kind="stable").reset_index(drop=True)
        frames = {name: localise_frame(frame, lang) for name, frame in frames.items()}
        paths = write_outputs(frames, out, settings.erasures())  # whenever the champions were trained
    versions = ", ".join(f"{k} v{v}" for k, v in champions.versions.items())
    for path in paths:
        console.print(str(path))
    console.print(f"{len(frames['customer_scores']):,} customers scored with champions {versions}")
    if unnamed:
        console.print(f"{unnamed:,} customers of the champions are not in the identity map "
                      f"{settings.identity_file} (erased, or the map was lost): left out of the export")


evaluate_app = typer.Typer(no_args_is_help=True, help="Out-of-time evaluation against peers, side by side.")
app.add_typer(evaluate_app, name="evaluate")


@evaluate_app.command("churn")
@user_errors
def evaluate_churn_command(
    data: DataOpt,
    horizon: Annotated[int, typer.Option(min=1, help="Churn horizon in days.")],
    mapping: MappingOpt = None,
    json_output: JsonOpt = False,
    plots: Annotated[Optional[Path], typer.Option(help="Write ROC/PR, calibration, lift/gain and SHAP plots "
                                                       "to this folder.")] = None,
    config: Annotated[Optional[Path], typer.Option(help="Churn config YAML (default configs/churn.yaml).")] = None,
) -> None:
    """Churn on an out-of-time split: the project's model against recency, BG/NBD and LightGBM on RFM."""
    from features.config import FeatureConfig
    from features.io import load_dataset
    from models.churn.config import ChurnConfig
    from training.evaluate_churn import evaluate_churn, evaluation_report, print_table, write_plots

    churn_config = ChurnConfig.load(config)
    feature_config = FeatureConfig.load()
    with console.status("loading data"):
        dataset = load_dataset(data, mapping, erasures=get_settings().erasures())
    with console.status("fitting the churn model and its peers on earlier cutoffs"):
        evaluation = evaluate_churn(dataset.tables, horizon, churn_config, feature_config)
    report = evaluation_report(evaluation)
    if plots:
        report["_info"]["plots"] = [str(p) for p in write_plots(evaluation, plots)]
    if json_output:
        _print_json(report)
    else:
        print_table(report)


@evaluate_app.command("recommender")
@user_errors
def evaluate_recommender_command(
    data: DataOpt,
    mapping: MappingOpt = None,
    test_days: TestDaysOpt = 30,
    json_output: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Recommendations on a temporal split: the two-stage recommender against its single-model peers."""
    from features.progress import bars
    from training.evaluate_recommender import evaluate_recommender_cli

    with bars(console, enabled=not quiet):
        evaluate_recommender_cli(data, mapping, test_days, json_output)


@evaluate_app.command("new-products")
@user_errors
def evaluate_new_products_command(
    data: DataOpt,
    mapping: MappingOpt = None,
    test_days: TestDaysOpt = 30,
    json_output: JsonOpt = False,
) -> None:
    """New products: ranking products first sold in the test window, the project's attribute model against
    random, category affinity, attribute popularity and an attribute kNN."""
    from training.evaluate_new_products import evaluate_new_products_cli

    evaluate_new_products_cli(data, mapping, test_days, json_output)


@evaluate_app.command("uplift")
@user_errors
def evaluate_uplift_command(
    data: DataOpt,
    mapping: MappingOpt = None,
    outcome: Annotated[Optional[str], typer.Option(help="Outcome to evaluate (default: the first the data has).")]
    = None,
    json_output: JsonOpt = False,
    plots: Annotated[Optional[Path], typer.Option(help="Write the Qini curves to this folder.")] = None,
    config: Annotated[Optional[Path], typer.Option(help="Uplift config YAML (default configs/uplift.yaml).")] = None,
) -> None:
    """Uplift on randomised campaigns: the project's model against random, S-, T-learner and class
    transformation (Qini AUC and uplift@30%, 70/30 splits over five seeds)."""
    from models.uplift.config import UpliftConfig
    from training.evaluate_uplift import evaluate_uplift, evaluation_report, print_table, write_plots
    from training.uplift_data import uplift_table

    uplift_config = UpliftConfig.load(config)
    with console.status("loading data"):
        table = uplift_table(data, mapping, get_settings().erasures(), uplift_config)
    name = table.outcome(outcome)
    with console.status(f"fitting the uplift model and its peers on {len(uplift_config.evaluation.seeds)} splits"):
        evaluation = evaluate_uplift(table.features, table.treatment, table.outcomes[name].to_numpy(),
                                     uplift_config, name)
    report = evaluation_report(evaluation)
    report["_info"]["source"] = table.source
    if plots:
        report["_info"]["plots"] = [str(p) for p in write_plots(evaluation, plots)]
    if json_output:
        _print_json(report)
    else:
        print_table(report)


campaign_app = typer.Typer(no_args_is_help=True, help="Campaigns: plan with a random holdout, measure the lift.")
app.add_typer(campaign_app, name="campaign")


@campaign_app.command("plan")
@user_errors
def campaign_plan_command(
    data: DataOpt,
    size: Annotated[int, typer.Option(min=1, help="Customers in the campaign, control group included.")],
    out: Annotated[Path, typer.Option(help="Contact list (.csv or .parquet); the exposure rows for the campaigns "
                                          "table go beside it as <name>.exposures.<suffix>.")],
    target: Annotated[Optional[str], typer.Option(help="Who may be picked: an expression over features and "
                                                       "scores, e.g. \"risk_band == 'high' and value_tier != 'low'\".")]
    = None,
    by: Annotated[Optional[str], typer.Option("--by", help="Rank by this column, highest first (default: "
                                                           "expected_incremental_value when the data has "
                                                           "campaigns, else value_at_risk).")] = None,
    holdout: Annotated[float, typer.Option(help="Share held out at random as control, in every segment.")] = 0.1,
    seed: Annotated[int, typer.Option(help="Seed of the random holdout.")] = 0,
    campaign_id: Annotated[Optional[str], typer.Option("--campaign-id", help="Campaign id (default: "
                                                                             "plan-<date>-<seed>).")] = None,
    sent_at: Annotated[Optional[str], typer.Option("--sent-at", help="Send date (default: the day after the "
                                                                     "data ends).")] = None,
    offer: Annotated[Optional[str], typer.Option(help="Offer sent (default: each customer's best offer).")] = None,
    channel: Annotated[str, typer.Option(help="Contact channel.")] = "email",
    cost: Annotated[float, typer.Option(min=0, help="Cost per contact.")] = 0.0,
    segment_by: Annotated[Optional[str], typer.Option("--segment-by", help="Column of the strata (default "
                                                                           "risk_band, else rank deciles).")] = None,
    scores: Annotated[Optional[Path], typer.Option(help="Customer scores to target by (the customer_scores file "
                                                        "of `clientele score`).")] = None,
    mapping: MappingOpt = None,
    config: Annotated[Optional[Path], typer.Option(help="Uplift config YAML (default configs/uplift.yaml).")] = None,
) -> None:
    """Pick customers who consented to marketing, rank them, and hold out a random control group."""
    import pandas as pd

    from features.exceptions import ConfigError
    from features.io import load_dataset
    from features.labels import data_end
    from models.uplift.config import UpliftConfig
    from training.campaigns import candidates, plan_campaign
    from training.campaigns import read_table, write_table

    uplift_config = UpliftConfig.load(config)
    settings = get_settings()
    erasures = settings.erasures()
    with console.status("loading data"):
        tables = load_dataset(data, mapping, erasures=erasures).tables
    try:
        when = pd.Timestamp(sent_at) if sent_at else data_end(tables).normalize() + pd.Timedelta(days=1)
    except ValueError:
        raise ConfigError(f"--sent-at: cannot read {sent_at!r} as a date (use YYYY-MM-DD)") from None
    campaign_id = campaign_id or f"plan-{when.date()}-{seed}"
    with console.status("scoring the candidates"):
        frame = candidates(tables, when, uplift_config, read_table(scores) if scores else None)
    plan = plan_campaign(frame, tables, campaign_id, when, size, holdout, seed, uplift_config, target=target,
                         rank_by=by, offer=offer, channel=channel, cost=cost, segment_by=segment_by,
                         erasures=erasures)
    exposures = out.with_name(f"{out.name.split('.')[0]}.exposures{''.join(out.suffixes) or '.csv'}")
    write_table(plan.contacts, out)
    write_table(plan.exposures, exposures)
    funnel = ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in plan.funnel.items())
    console.print(f"campaign {campaign_id}: {funnel}")
    for note in plan.notes:
        console.print(f"note: {note}")
    console.print(f"{out}: {len(plan.contacts):,} to contact; {exposures}: {len(plan.exposures):,} exposure rows "
                  f"({int((plan.exposures['group'] == 'control').sum()):,} held out as control)")


@campaign_app.command("report")
@user_errors
def campaign_report_command(
    data: DataOpt,
    campaign: Annotated[str, typer.Option("--campaign", help="Campaign id.")],
    mapping: MappingOpt = None,
    json_output: JsonOpt = False,
    plots: Annotated[Optional[Path], typer.Option(help="Write the lift per segment to this folder.")] = None,
    preset: Annotated[str, typer.Option(help="Industry preset giving the retention horizon.")] = "beauty",
    config: Annotated[Optional[Path], typer.Option(help="Uplift config YAML (default configs/uplift.yaml).")] = None,
    lang: Annotated[str, typer.Option("--lang", help="Language of the reason and notes: en or zh-CN.")] = "en",
) -> None:
    """Treated vs control: response, orders, revenue per customer, incremental revenue and ROI, with intervals."""
    from features.io import load_dataset
    from models.uplift.config import UpliftConfig
    from features.i18n import check_locale
    from training.campaigns import campaign_report, localise_report, print_report, write_report_plots

    check_locale(lang)
    uplift_config = UpliftConfig.load(config)
    with console.status("loading data"):
        tables = load_dataset(data, mapping, erasures=get_settings().erasures()).tables
    report = campaign_report(tables, campaign, uplift_config, preset)
    if plots:
        report["_info"]["plots"] = [str(p) for p in write_report_plots(report, plots)]
    report = localise_report(report, lang)
    if json_output:
        _print_json(report)
    else:
        print_report(report, lang)


def main() -> None:
    """Entry point of ``python -m training.cli`` (the console script is serving.cli's, which calls the same)."""
    from features.privacy import private_files

    private_files()  # what the commands write holds customer data: owner-only (see serving.cli.main)
    app()


if __name__ == "__main__":
    main()
