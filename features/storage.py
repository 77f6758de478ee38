"""Where data lives: a local path or an fsspec URL (``s3://``, ``gs://``, ``abfs://``, ``hdfs://``, ``file://``).

A location must mean the same on the machine that starts a job and on every Dask worker: a local path is made
absolute before it leaves the client, a URL names shared storage. Opening a URL whose filesystem package is not
installed is one line naming the package, never an ImportError traceback.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any, Iterator

from features.exceptions import ClienteleError, DataError

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")

# The optional package behind each protocol (fsspec's own registry names the classes, not what to install).
PACKAGES = {"s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "abfs": "adlfs", "abfss": "adlfs",
            "az": "adlfs", "hdfs": "pyarrow with Hadoop's libhdfs and a Java runtime (JAVA_HOME, HADOOP_HOME)"}

Location = str | Path


def is_url(location: Location) -> bool:
    """Whether ``location`` is a URL (``scheme://...``) rather than a local path."""
    return isinstance(location, str) and bool(_URL.match(location))


def protocol(location: Location) -> str:
    """The URL's scheme (``s3``), or ``file`` for a local path."""
    return str(location).split("://", 1)[0].lower() if is_url(location) else "file"


def absolute(location: Location) -> Location:
    """A local path made absolute (workers resolve relative paths against their own working directory); a URL
    as it is, without a trailing slash."""
    if is_url(location):
        return str(location).rstrip("/")
    return Path(location).resolve()


def as_location(text: str | Path) -> Location:
    """A command-line or config value as a location: a URL stays text (``Path`` would fold ``//``)."""
    return str(text) if is_url(str(text)) else Path(text)


def join(location: Location, *names: str) -> Location:
    """``location`` / ``names``, for paths and URLs alike."""
    if is_url(location):
        return "/".join([str(location).rstrip("/"), *names])
    return Path(location).joinpath(*names)


def name_of(location: Location) -> str:
    """The last component of a location (``shop`` for ``s3://bucket/exports/shop/``)."""
    return PurePosixPath(str(location).split("://", 1)[-1].rstrip("/")).name if is_url(location) \
        else Path(location).name


def stem_of(location: Location) -> str:
    """The last component without its suffix."""
    return PurePosixPath(name_of(location)).stem


def dataset_name(location: Location) -> str:
    """A dataset's name for its rejects folder: a file's stem, a folder's name."""
    return stem_of(location) if is_file(location) else name_of(location)


def filesystem(location: Location) -> tuple[Any, str]:
    """The fsspec filesystem holding ``location`` and the path on it.

    Raises
    ------
    DataError
        The URL's protocol is unknown, or its filesystem package is not installed (the message names it).
    """
    import fsspec.core

    try:
        return fsspec.core.url_to_fs(str(location))
    except ImportError:
        scheme = protocol(location)
        raise DataError(f"{location}: reading {scheme}:// needs the package "
                        f"{PACKAGES.get(scheme, 'that implements it for fsspec')}, which is not installed "
                        f"(pip install {PACKAGES.get(scheme, '...').split()[0]})") from None
    except ValueError as exc:
        raise DataError(f"{location}: {first_line(exc)} (known: file, s3, gs, abfs, hdfs and the other "
                        f"protocols of fsspec)") from None
    except Exception as exc:  # e.g. hdfs without a Java runtime: the filesystem cannot even start
        scheme = protocol(location)
        needs = f"; {scheme}:// needs {PACKAGES[scheme]}" if scheme in PACKAGES else ""
        raise DataError(f"{location}: cannot open its filesystem ({first_line(exc)}){needs}") from None


def exists(location: Location) -> bool:
    fs, path = filesystem(location)
    return bool(fs.exists(path))


def is_file(location: Location) -> bool:
    fs, path = filesystem(location)
    return bool(fs.isfile(path))


def is_dir(location: Location) -> bool:
    fs, path = filesystem(location)
    return bool(fs.isdir(path))


def list_names(location: Location) -> list[str]:
    """Names of the entries of a folder."""
    fs, path = filesystem(location)
    return [PurePosixPath(p.rstrip("/")).name for p in fs.ls(path, detail=False)]


def files_under(location: Location) -> list[Location]:
    """Every file below a folder, sorted, as locations of the same kind (URLs stay URLs)."""
    if not is_url(location):
        return sorted(p for p in Path(location).rglob("*") if p.is_file())
    fs, path = filesystem(location)
    return sorted(fs.unstrip_protocol(p) for p in fs.find(path))


@contextmanager
def open_binary(location: Location) -> Iterator[Any]:
    """A file object to read ``location`` (pyarrow reads Parquet from it)."""
    fs, path = filesystem(location)
    with fs.open(path, "rb") as handle:
        yield handle


def read_text(location: Location) -> str:
    """The text of a small file (a mapping or a config) at a path or URL."""
    if not is_url(location):
        return Path(location).read_text()
    fs, path = filesystem(location)
    with fs.open(path, "rt") as handle:
        return handle.read()


def write_text(location: Location, text: str) -> None:
    """Write UTF-8 text to a path or URL."""
    if not is_url(location):
        Path(location).write_text(text, encoding="utf-8")
        return
    fs, path = filesystem(location)
    with fs.open(path, "wt", encoding="utf-8") as handle:
        handle.write(text)


@contextmanager
def local_copy(location: Location) -> Iterator[Path]:
    """``location`` as a local file: itself, or a temporary copy of a URL's object (readers that need a real
    file, such as the CSV reader's long-line pass, read that)."""
    if not is_url(location):
        yield Path(location)
        return
    import tempfile

    fs, path = filesystem(location)
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / name_of(location)
        fs.get(path, str(target))
        yield target


def write_parquet(frame: Any, location: Location) -> None:
    """Write a pandas frame as one Parquet file at a path or URL, creating its folder.

    Raises
    ------
    ClienteleError
        The file cannot be written (one line naming it).
    """
    try:
        make_dirs(parent_of(location))
        frame.to_parquet(str(location), index=False)
    except ClienteleError:
        raise
    except Exception as exc:
        raise ClienteleError(f"{location}: cannot write ({first_line(exc)})") from None


def parent_of(location: Location) -> Location:
    """The folder holding a location."""
    if not is_url(location):
        return Path(location).parent
    return str(location).rstrip("/").rsplit("/", 1)[0]


def make_dirs(location: Location) -> None:
    """Create a folder (and its parents) at a path or URL; object stores have no folders to create."""
    if not is_url(location):
        Path(location).mkdir(parents=True, exist_ok=True)
        return
    fs, path = filesystem(location)
    fs.makedirs(path, exist_ok=True)


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
