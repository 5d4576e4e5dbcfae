"""The one exception tree of livetopic.

Every error the package raises on purpose derives from :class:`LivetopicError`, so callers can catch
the whole family or one branch. Errors of third-party libraries are mapped into it where they are met
(Redis errors in :mod:`worker.streams.retry`, model-loading errors in :mod:`worker.model.load`)::

    LivetopicError
    ├── ConfigError              a setting or command-line option is invalid
    ├── InputFileError           a file handed to ``push``/``train``/``label`` cannot be read
    ├── ModelError               a model version cannot be loaded, validated or run
    │   ├── RepositoryError      the model repository layout or a manifest is wrong
    │   ├── HubError             the Hub gave no model: not found, no access, unknown revision, offline and not cached
    │   └── ModelOutOfMemoryError  the device had no memory for a batch (smaller ones may fit)
    ├── RedisError               a Redis command failed (the message names the command)
    │   ├── RedisTransientError  "not now": connection lost, timeout, LOADING, READONLY, BUSY…; retry later
    │   │   └── RedisOutOfMemoryError   the server refused a write at its ``maxmemory`` limit
    │   ├── RedisCommandError    "never": WRONGTYPE, NOPERM, a script error…; a configuration fault
    │   │   └── GroupMissingError       the consumer group (or its stream) does not exist (NOGROUP)
    │   └── RedisUnavailableError       transient errors outlasted the caller's retry budget
    ├── EmbeddedRedisError       the bundled redis-server could not be started
    ├── SourceError              a live-chat library failed (``scrape``): names it, its version, the fallback
    └── ReportError              a report cannot be drawn (a missing extra, no font with Chinese glyphs)
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "EmbeddedRedisError",
    "GroupMissingError",
    "HubError",
    "InputFileError",
    "LivetopicError",
    "ModelError",
    "ModelOutOfMemoryError",
    "RedisCommandError",
    "RedisError",
    "RedisOutOfMemoryError",
    "RedisTransientError",
    "RedisUnavailableError",
    "ReportError",
    "RepositoryError",
    "SourceError",
]


class LivetopicError(Exception):
    """Base class of every error livetopic raises on purpose."""


class ConfigError(LivetopicError):
    """A setting is invalid; the message names it."""


class InputFileError(LivetopicError):
    """An input file is missing, unreadable or not in a known format."""


class ModelError(LivetopicError):
    """A model version cannot be loaded, fails validation, or fails at inference."""


class RepositoryError(ModelError):
    """The model repository has no usable version, or a version's manifest is invalid."""


class HubError(ModelError):
    """``model pull``: the Hub has no such model or revision, refuses access, or cannot be reached and the files
    are not in the local Hub cache."""


class ModelOutOfMemoryError(ModelError):
    """The device ran out of memory for a batch (its cache is emptied first); a smaller batch may fit."""


class RedisError(LivetopicError):
    """A Redis command failed. ``command`` names what was attempted."""

    def __init__(self, message: str, command: str = "") -> None:
        super().__init__(message)
        self.command = command


class RedisTransientError(RedisError):
    """The same command may succeed later: nothing it would have written was written."""


class RedisOutOfMemoryError(RedisTransientError):
    """Redis refused a write because it is at its ``maxmemory`` limit (with a no-eviction policy)."""


class RedisCommandError(RedisError):
    """Redis refused the command for a reason that retrying does not change (a configuration fault)."""


class GroupMissingError(RedisCommandError):
    """The consumer group, or its stream, does not exist (``NOGROUP``): destroyed, or Redis lost its data."""


class RedisUnavailableError(RedisError):
    """Transient Redis errors went on for longer than the caller's retry budget."""


class EmbeddedRedisError(LivetopicError):
    """The bundled redis-server binary could not be started."""


class SourceError(LivetopicError):
    """A live-chat library (chat-downloader, yt-dlp) failed in a way a reconnect does not cure."""


class ReportError(LivetopicError):
    """A report cannot be drawn: an optional dependency or a font is missing, or the output is unsupported."""
