"""The one exception tree of livetopic.

Every error the package raises on purpose derives from :class:`LivetopicError`, so callers can catch
the whole family or one branch::

    LivetopicError
    ├── ConfigError            a setting or command-line option is invalid
    ├── InputFileError         a file handed to ``push``/``train``/``label`` cannot be read
    ├── ModelError             a model version cannot be loaded, validated or run
    │   └── RepositoryError    the model repository layout or a manifest is wrong
    ├── RedisUnavailableError  Redis could not be reached within the retry budget
    └── EmbeddedRedisError     the bundled redis-server could not be started
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "EmbeddedRedisError",
    "InputFileError",
    "LivetopicError",
    "ModelError",
    "RedisUnavailableError",
    "RepositoryError",
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


class RedisUnavailableError(LivetopicError):
    """Redis stayed unreachable for longer than the retry budget."""


class EmbeddedRedisError(LivetopicError):
    """The bundled redis-server binary could not be started."""
