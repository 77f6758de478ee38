"""The few errors Clientele raises on bad input; each message names the file, row, column or field."""


class ClienteleError(Exception):
    """Base of every error meant for the user: its message is one line and says what to fix."""


class DataError(ClienteleError):
    """Input data cannot be used at all (unreadable file, missing required column, no usable row)."""


class ConfigError(ClienteleError):
    """A configuration or column-mapping file is malformed or refers to something that does not exist."""
