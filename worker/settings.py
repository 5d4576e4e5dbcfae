"""The one settings class. Every field is an environment variable ``LIVETOPIC_<NAME>`` and a CLI flag
``--<name-with-dashes>``; flags win over the environment, which wins over defaults.

Nothing is read at import time: :func:`load_settings` reads the environment when called.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .errors import ConfigError
from .wire import MAX_PASSTHROUGH_CHARS

__all__ = [
    "BACKEND_CHOICES",
    "DTYPE_CHOICES",
    "ENV_PREFIX",
    "Backend",
    "Device",
    "Dtype",
    "Settings",
    "StreamNames",
    "default_consumer",
    "load_settings",
    "url_has_password",
    "with_password",
]

Device = Literal["auto", "cpu", "cuda"]  # what --device accepts everywhere
Dtype = Literal["auto", "float32", "float16", "bfloat16", "int8"]
DTYPE_CHOICES: tuple[str, ...] = get_args(Dtype)  # "auto" first; what --dtype accepts everywhere
Backend = Literal["auto", "torch", "onnxruntime", "openvino", "null"]
BACKEND_CHOICES: tuple[str, ...] = get_args(Backend)  # "auto" first; what --backend accepts everywhere

ENV_PREFIX = "LIVETOPIC_"


def default_consumer() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True, slots=True)
class StreamNames:
    """The streams and the consumer group a set of workers shares."""

    input: str
    output: str
    dead_letter: str
    group: str

    def flags(self) -> list[str]:
        """The worker's flags naming them."""
        return [
            "--input-stream",
            self.input,
            "--output-stream",
            self.output,
            "--dead-letter-stream",
            self.dead_letter,
            "--group",
            self.group,
        ]


class Settings(BaseSettings):
    """livetopic's configuration (worker, producer, tail, bench)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", validate_default=True)

    # Redis and streams
    redis_url: str | None = Field(
        None,
        description="redis:// or rediss:// URL; unset: start an embedded server. A "
        "password here shows in ps: prefer LIVETOPIC_REDIS_URL, --redis-url-file or "
        "LIVETOPIC_REDIS_PASSWORD",
    )
    redis_url_file: Path | None = Field(None, description="read the Redis URL from this file (a mounted secret)")
    redis_password: SecretStr | None = Field(
        None, description="Redis password, added to the URL (use the environment variable, not the flag)"
    )
    redis_data_dir: Path = Field(Path(".livetopic-redis"), description="data directory of the embedded server")
    input_stream: str = Field("livetopic:comments", min_length=1, description="stream of incoming comments")
    output_stream: str = Field("livetopic:topics", min_length=1, description="stream of published results")
    dead_letter_stream: str = Field("livetopic:dead", min_length=1, description="stream of rejected comments")
    group: str = Field("livetopic", min_length=1, description="consumer group name")
    consumer: str = Field(
        default_factory=default_consumer, min_length=1, description="consumer name (default: <hostname>-<pid>)"
    )
    group_start_id: str = Field(
        "0",
        description="where the consumer group starts on a stream no worker served yet "
        "(no resume mark): 0 (everything in the stream) or $ (only what comes after; what "
        "is there is skipped, with a warning). A group that served once always resumes at "
        "its resume mark",
    )
    output_maxlen: int = Field(1_000_000, ge=1, description="approximate MAXLEN of the output stream")
    dead_letter_maxlen: int = Field(100_000, ge=1, description="approximate MAXLEN of the dead-letter stream")
    read_count: int = Field(256, ge=1, description="entries asked for per XREADGROUP")
    block_ms: int = Field(500, ge=1, le=60_000, description="XREADGROUP block time")
    redis_timeout_s: float = Field(10.0, gt=0, description="socket timeout of Redis commands")
    shards: int = Field(
        1,
        ge=1,
        le=1024,
        description="split the input, output and dead-letter streams into this many shards (keys tagged {k}: "
        "livetopic:comments:{3}…); producers route each comment by channel; 1 on a plain Redis keeps the names as "
        "they are",
    )
    shard_set: Annotated[tuple[int, ...], NoDecode] = Field(
        (), description="the shards this worker serves, comma-separated (default: all)"
    )
    redis_cluster: bool = Field(False, description="the Redis URL names a node of a Redis Cluster")
    wait_replicas: int = Field(
        0,
        ge=0,
        description="after each publish and each producer write, WAIT until this many replicas have it "
        "(a write acknowledged then survives a failover; 0: no WAIT, replication stays asynchronous)",
    )
    wait_timeout_ms: int = Field(1_000, ge=1, description="longest WAIT for --wait-replicas")
    output_text: bool = Field(
        True,
        description="copy each comment's text into its result (--no-output-text leaves it out, where privacy asks)",
    )

    # Batching and model
    model_repo: Path = Field(Path("models"), description="model repository directory (REPO/<n>/)")
    model_version: int | None = Field(None, ge=1, description="pin this version (no hot reload)")
    max_batch_size: int = Field(256, ge=1, le=4096, description="flush a batch at this many comments")
    max_batch_tokens: int = Field(4096, ge=8, description="flush a batch at this many (real) tokens")
    max_wait_ms: float = Field(
        5.0, ge=0, description="flush this long after the batch's first comment was pushed (its wait so far counts)"
    )
    max_inflight: int = Field(1024, ge=1, description="comments read but not yet acked, at most")
    device: Device = Field("auto", description="inference device")
    dtype: Dtype = Field(
        "auto",
        description="inference dtype (auto: on GPUs bfloat16, else float16; on CPUs int8 (ONNX Runtime), "
        "else the next fastest; auto skips a backend and dtype whose label agreement with float32, recorded in the "
        "version's manifest, is below 99.5%; int8: CPU only)",
    )
    backend: Backend = Field(
        "auto",
        description="inference engine (auto: ONNX Runtime on CPUs, PyTorch on GPUs; onnxruntime: CPU, "
        "float32 or int8, the version exported to ONNX once and cached beside it; null: a stand-in that returns "
        "fixed scores instantly, for measuring the host path only)",
    )
    torch_threads: int | None = Field(
        None, ge=1, description="intra-op threads of the model, PyTorch or ONNX Runtime (default: all cores)"
    )
    compile: bool = Field(False, description="torch.compile the model (CUDA)")

    # Reliability
    claim_min_idle_ms: int = Field(30_000, ge=1, description="reclaim entries idle this long from others")
    claim_interval_s: float = Field(5.0, gt=0, description="how often to look for entries to reclaim")
    max_deliveries: int = Field(5, ge=1, description="dead-letter a comment delivered more often")
    max_text_chars: int = Field(2_000, ge=1, description="dead-letter longer texts")
    max_entry_bytes: int = Field(65_536, ge=1, description="dead-letter larger stream entries")
    max_passthrough_chars: int = Field(
        MAX_PASSTHROUGH_CHARS,
        ge=1,
        description="cut longer channel, user, ts and id fields to this many characters "
        "(the comment is still classified; its result names the fields cut in 'truncated')",
    )
    shutdown_grace_s: float = Field(20.0, ge=0, description="drain in-flight work this long on SIGTERM")
    stall_timeout_s: float = Field(
        120.0,
        gt=0,
        description="/healthz fails when comments are in hand and "
        "nothing was scored or published for this long (a stuck worker is restarted)",
    )
    reload_interval_s: float = Field(5.0, gt=0, description="poll the model repository this often")
    stream_stats_interval_s: float = Field(
        5.0,
        gt=0,
        description="poll the group's lag and pending and the streams' lengths (livetopic_stream_* metrics) this often",
    )

    # HTTP
    metrics_host: str = Field("127.0.0.1", description="bind address of /metrics, /healthz, /readyz")
    metrics_port: int = Field(9400, ge=0, le=65535, description="port of the metrics server (0: any)")
    metrics_channels: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        description="channels that get their own channel label on livetopic_label_total, comma-separated; "
        "others are counted as 'other' (empty: all as 'all')",
    )

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="log level")

    @property
    def streams(self) -> StreamNames:
        return StreamNames(self.input_stream, self.output_stream, self.dead_letter_stream, self.group)

    @field_validator("redis_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("metrics_channels", mode="before")
    @classmethod
    def _split_channels(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = tuple(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))
        if isinstance(value, tuple | list) and {"all", "other"} & set(value):
            raise ValueError("'all' and 'other' are the metric's own channel values, not channel names to list")
        return value

    @field_validator("shard_set", mode="before")
    @classmethod
    def _split_shards(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = tuple(sorted({int(part) for part in value.split(",") if part.strip()}))
        return value

    @field_validator("group_start_id")
    @classmethod
    def _check_start(cls, value: str) -> str:
        if value not in ("$", "0") and not value.replace("-", "").isdigit():
            raise ValueError("must be $, 0 or a stream id")
        return value

    @model_validator(mode="after")
    def _resolve_redis_url(self) -> Settings:
        if self.redis_url_file is not None:
            if self.redis_url:
                raise ValueError("give redis_url or redis_url_file, not both")
            try:
                url = self.redis_url_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ValueError(f"redis_url_file: cannot read {self.redis_url_file}: {exc.strerror}") from None
            self.redis_url = self._check_url(url)
        if self.redis_password is not None:
            if not self.redis_url:
                raise ValueError("redis_password needs a redis_url (the embedded server has no password)")
            self.redis_url = with_password(self.redis_url, self.redis_password.get_secret_value())
        return self

    @model_validator(mode="after")
    def _check_streams(self) -> Settings:
        names = {self.input_stream, self.output_stream, self.dead_letter_stream}
        if len(names) != 3:
            raise ValueError("input_stream, output_stream and dead_letter_stream must differ")
        if any(k >= self.shards for k in self.shard_set):
            raise ValueError(f"shard_set names shards beyond 0…{self.shards - 1} (--shards {self.shards})")
        if (self.shards > 1 or self.redis_cluster) and any(c in n for n in names for c in "{}"):
            raise ValueError("sharded or cluster stream names get their own hash tag: leave { and } out of them")
        if self.block_ms / 1000 >= self.redis_timeout_s:
            raise ValueError("block_ms must be shorter than redis_timeout_s, or every idle read times out")
        return self


def with_password(url: str, password: str) -> str:
    """``url`` with ``password`` in it (after the ACL user, if the URL names one)."""
    parts = urlsplit(url)
    if parts.password:
        raise ValueError("the Redis URL has a password already; give it once")
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:{quote(password, safe='')}@{host}"))


def url_has_password(url: str | None) -> bool:
    return url is not None and urlsplit(url).password is not None


def _unknown_env_keys(environ: dict[str, str]) -> list[str]:
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    return sorted(k for k in environ if k.startswith(ENV_PREFIX) and k not in known)


def load_settings(overrides: dict[str, Any] | None = None) -> Settings:
    """Settings from (in order of precedence) ``overrides`` (CLI flags), the environment and defaults.

    Raises :class:`ConfigError` naming the offending setting(s); unknown ``LIVETOPIC_*`` variables are
    rejected, so a typo does not silently fall back to a default.
    """
    unknown = _unknown_env_keys(dict(os.environ))
    if unknown:
        raise ConfigError(f"unknown setting(s) in the environment: {', '.join(unknown)}")
    clean = {k: v for k, v in (overrides or {}).items() if v is not None}
    try:
        return Settings(**clean)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = ".".join(str(p) for p in err["loc"])
            where = f"--{name.replace('_', '-')} / {ENV_PREFIX}{name.upper()}" if name else "settings"
            problems.append(f"{where}: {err['msg']}")
        raise ConfigError("invalid setting(s): " + "; ".join(problems)) from exc
