"""The few errors Clientele raises on bad input; each message names the file, row, column or field."""


class ClienteleError(Exception):
    """Base of every error meant for the user: its message is one line and says what to fix."""

    exit_code = 2  # bad input; see ClusterError


class DataError(ClienteleError):
    """Input data cannot be used at all (unreadable file, missing required column, no usable row)."""


class ConfigError(ClienteleError):
    """A configuration or column-mapping file is malformed or refers to something that does not exist."""


class ClusterError(ClienteleError):
    """A Dask cluster could not run the job (scheduler unreachable, no worker, workers lost beyond the retries);
    the input may be fine, so the command exits 1, not 2."""

    exit_code = 1
