"""Named error classes.

Every mistake a user can make (bad config, missing data, a corrupt run
directory, wrong shapes, NaN weights) raises a subclass of
:class:`SparsescopeError`; the CLI prints its one-line message and exits 2.
Anything else is a bug and keeps its traceback.
"""


class SparsescopeError(Exception):
    """A user-facing error: the message names the problem in one line."""


class ConfigError(SparsescopeError):
    """A missing, malformed or inconsistent experiment config."""


class DataError(SparsescopeError):
    """A dataset that is unknown, missing or malformed."""


class RunStoreError(SparsescopeError):
    """A run directory that is missing, corrupt or truncated."""


class GraphError(SparsescopeError):
    """A model or flowgraph that cannot be built or read (shapes, NaN, unknown layer)."""
