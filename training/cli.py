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

from features.exceptions import ClienteleError
from training.settings import get_settings

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Clientele: recommendations, churn and customer value for retailers.")
console = Console(stderr=True)

DataOpt = Annotated[Path, typer.Option("--data", help="Transactions file or a folder with one file per table.")]
MappingOpt = Annotated[Optional[Path], typer.Option("--mapping", help="Column-mapping YAML (configs/datasets/).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")]


def user_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn errors meant for the user into one line on stderr and exit status 2 (never a traceback)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ClienteleError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise typer.Exit(code=2) from None

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
    dataset = load_dataset(data, mapping)
    report = dataset.report()
    name = data.stem if data.is_file() else data.name
    report["rejects_files"] = dataset.write_rejects(rejects or get_settings().rejects_dir(name))
    report["seconds"] = round(time.perf_counter() - started, 2)
    if json_output:
        _print_json(report)
        return
    _print_report(report)


def _print_report(report: dict[str, Any]) -> None:
    out = Console()
    out.print(f"[bold]{report['source']}[/] (mapping: {report['mapping']})")
    summary = Table(show_header=False, box=None)
    for key in ("rows_read", "rows_kept", "rows_rejected", "customers", "products", "orders", "duplicates"):
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
) -> None:
    """Generate a realistic synthetic retail dataset (all five tables) in canonical form."""
    from features.synthetic import generate as generate_tables
    from features.synthetic import write_tables

    started = time.perf_counter()
    with console.status(f"generating {customers:,} {preset} customers"):
        tables = generate_tables(preset, customers=customers, seed=seed)
        paths = write_tables(tables, out)
    for path in paths:
        table = Path(path).name.split(".")[0]
        console.print(f"{path}: {len(tables[table]):,} rows")
    console.print(f"done in {time.perf_counter() - started:.1f} s")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
