"""`clientele serve` and `clientele keys ...`, added to the training CLI (the console script points here)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from features.privacy import private_files
from training.cli import app, user_errors

keys_app = typer.Typer(no_args_is_help=True, help="API keys: create (shown once), list, revoke.")
app.add_typer(keys_app, name="keys")


@app.command()
@user_errors
def serve(
    host: Annotated[Optional[str], typer.Option(help="Interface to listen on (default CLIENTELE_HOST or "
                                                     "127.0.0.1).")] = None,
    port: Annotated[Optional[int], typer.Option(help="Port (default CLIENTELE_PORT or 8000).")] = None,
    workers: Annotated[Optional[int], typer.Option(min=1, max=64, help="Worker processes (default "
                                                                       "CLIENTELE_WORKERS or 1).")] = None,
) -> None:
    """Serve the API (uvicorn with uvloop and httptools); models load from the registry's champions."""
    from serving.settings import get_serving_settings

    # Workers are fresh processes that read the environment: pass the options on through it.
    for name, value in (("HOST", host), ("PORT", port), ("WORKERS", workers)):
        if value is not None:
            os.environ[f"CLIENTELE_{name}"] = str(value)
    settings = get_serving_settings()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    if settings.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Every worker writes its samples here; emptied so a restart does not add up the last run's. Set before
        # anything imports prometheus_client, which picks its mode once, at import (one worker runs in this
        # very process and keeps its samples in memory).
        shutil.rmtree(settings.metrics_dir, ignore_errors=True)
        settings.metrics_dir.mkdir(parents=True, exist_ok=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(settings.metrics_dir)
    import uvicorn

    from serving.app import configure_logging

    configure_logging(settings.log_level)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # The key is settled here, once, so a refused key is one line and every worker then reads the same file.
    _ = settings.pseudonym_key
    uvicorn.run("serving.app:app_from_env", factory=True, host=settings.host, port=settings.port,
                workers=settings.workers, loop="uvloop", http="httptools", access_log=False,
                log_level=settings.log_level.lower(), timeout_graceful_shutdown=10, server_header=False)


@app.command()
@user_errors
def erase(
    customer: Annotated[Optional[list[str]], typer.Option("--customer", help="A customer id, as in the data (repeat "
                                                                             "for several).")] = None,
    file: Annotated[Optional[Path], typer.Option("--file", help="A UTF-8 text file of customer ids, one per "
                                                                 "line.")] = None,
) -> None:
    """Erase customers: added to the erasure list the API's DELETE writes. A running server forgets them at
    once, exports and batch scoring leave them out, the next training run drops their rows."""
    from features.exceptions import ConfigError
    from features.validation import id_error
    from serving.erasure import Erasures, erase_customers
    from serving.events import EventJournal
    from serving.settings import get_serving_settings

    ids = list(customer or [])
    for i, value in enumerate(ids, start=1):
        problem = id_error(value)
        if problem:
            raise ConfigError(f"--customer (occurrence {i}): the id {problem}")
    if file is not None:
        ids += _ids_in(file)
    if not ids:
        raise ConfigError("nothing to erase: give --customer ID (repeatable) or --file PATH (one id per line)")
    settings = get_serving_settings()
    erasures = Erasures(settings.erasure_file, settings.pseudonym_key, settings.identities())
    # The journal line reaches every worker of a running server; nothing is replayed, this process serves nothing.
    journal = EventJournal(settings.events_dir, erasures.pseudonyms, replay_days=0)
    journal.open()
    try:
        new = sum(fresh for _, fresh in erase_customers(erasures, journal, list(dict.fromkeys(ids))))
    finally:
        journal.close()
    distinct = len(set(ids))
    print(f"erased {distinct:,} customers ({new:,} new, {distinct - new:,} already erased) in "
          f"{settings.erasure_file}", file=sys.stderr)


@app.command()
@user_errors
def moments(
    start: Annotated[str, typer.Option("--from", help="First day, ISO date (inclusive).")],
    end: Annotated[str, typer.Option("--to", help="Last day, ISO date (inclusive).")],
    out: Annotated[Path, typer.Option("--out", help="CSV file to write (owner-only).")],
    kind: Annotated[Optional[list[str]], typer.Option("--kind", help="replenishment, birthday, occasion or "
                                                                      "tier_upgrade (repeat for several).")] = None,
    segment: Annotated[Optional[list[str]], typer.Option("--segment", help="RFM segment (repeatable).")] = None,
    contactable: Annotated[bool, typer.Option("--contactable", help="Only customers who consented to "
                                                                    "marketing.")] = False,
    lang: Annotated[str, typer.Option("--lang", help="Language of descriptions and reasons: en or zh-CN.")] = "en",
) -> None:
    """Moments to reach out between two dates (refills due, birthdays, occasions, tier upgrades) with suggested
    products, value and consent, as the API's `GET /v1/moments` lists them, customers by their own ids."""
    from datetime import date

    from features.exceptions import ConfigError
    from features.i18n import check_locale
    from serving.moments import MOMENT_KINDS, MomentQuery, write_moments_csv

    check_locale(lang)
    dates = []
    for flag, value in (("--from", start), ("--to", end)):
        try:
            dates.append(date.fromisoformat(value))
        except ValueError:
            raise ConfigError(f"{flag}: {value!r} is not a date (YYYY-MM-DD)") from None
    if dates[1] < dates[0]:
        raise ConfigError(f"--to: {end} is before --from ({start})")
    for value in kind or []:
        if value not in MOMENT_KINDS:
            raise ConfigError(f"--kind: unknown kind {value!r} (one of {', '.join(MOMENT_KINDS)})")
    query = MomentQuery(start=dates[0], end=dates[1], kinds=tuple(kind or ()), segments=tuple(segment or ()),
                        contactable=True if contactable else None)
    count = write_moments_csv(query, out, lang)
    print(f"wrote {count:,} moments to {out}", file=sys.stderr)


def _ids_in(path: Path) -> list[str]:
    """Customer ids of a file, one per line (blank lines skipped; surrounding whitespace is no part of an id)."""
    from features.exceptions import ConfigError
    from features.validation import id_error

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    ids = []
    for number, line in enumerate(text.splitlines(), start=1):
        value = line.strip()
        if not value:
            continue
        problem = id_error(value)
        if problem:
            raise ConfigError(f"{path}: line {number}: the id {problem}")
        ids.append(value)
    return ids


@keys_app.command("create")
@user_errors
def keys_create(
    name: Annotated[str, typer.Option(help="Who uses the key: storefront, crm, ingest, ...")],
    scopes: Annotated[str, typer.Option(help="Comma-separated: recommendations:read, scores:read, events:write, "
                                             "admin.")],
    rate_limit: Annotated[Optional[float], typer.Option("--rate-limit", help="Requests per second for this key "
                                                                             "(default CLIENTELE_RATE_LIMIT_PER_S); "
                                                                             "it may send max(1, 2 x rate) at once "
                                                                             "(CLIENTELE_RATE_LIMIT_BURST_S=2).")]
    = None,
) -> None:
    """Create an API key and print it once: only its hash is stored. It works on the server's next request."""
    from serving.auth import create_key
    from serving.settings import get_serving_settings

    path = get_serving_settings().keys_file
    record, secret = create_key(path, name, scopes, rate_limit=rate_limit)
    print(secret)
    print(f"key {record.id} ({record.name}: {', '.join(record.scopes)}) added to {path}; it is shown only now",
          file=sys.stderr)


@keys_app.command("list")
@user_errors
def keys_list(json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List keys (never the keys themselves)."""
    from serving.auth import KeyFile
    from serving.settings import get_serving_settings

    keys = KeyFile.read(get_serving_settings().keys_file).keys
    rows = [{k: v for k, v in key.to_json().items() if k != "sha256"} for key in keys]
    if json_output:
        sys.stdout.write(json.dumps(rows) + "\n")
        return
    for row in rows:
        state = f"revoked {row['revoked_at']}" if row["revoked_at"] else "active"
        limit = f", {row['rate_limit']:g}/s" if row["rate_limit"] else ""
        print(f"{row['id']}  {row['name']:<16} {','.join(row['scopes']):<40} {row['created_at']}  {state}{limit}")


@keys_app.command("revoke")
@user_errors
def keys_revoke(name: Annotated[str, typer.Argument(help="Id of the key, or its name when exactly one unrevoked "
                                                          "key has that name.")]) -> None:
    """Revoke a key: the running server refuses it from the next request on."""
    from serving.auth import revoke_key
    from serving.settings import get_serving_settings

    key = revoke_key(get_serving_settings().keys_file, name)
    print(f"revoked key {key.id} ({key.name})", file=sys.stderr)


def main() -> None:
    """Console-script entry point: the training commands plus serve and keys."""
    # Everything this command writes (rejects, scores, mlflow.db, artefacts, the journal, the serving cache) holds
    # customer data: owner-only, and so are the server's workers, which inherit the umask.
    private_files()
    app()


if __name__ == "__main__":
    main()
