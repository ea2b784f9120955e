"""``config.yaml`` and ``channels/*.yaml`` turned into typed, validated models.

Everything that can be wrong in configuration is found here, at load time, with file, line and field:
``hie check`` prints the problems, ``hie run`` refuses to start on any of them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from engine.alerts.config import AlertsSettings, check_alerts
from engine.console.settings import ConsoleSettings
from engine.errors import ConfigError, ConfigProblem
from engine.yamlloc import Located, load_yaml, problems_from_validation

if TYPE_CHECKING:
    from engine.console.sections import ConsoleSection
    from engine.mapping.catalog import Catalog
    from engine.plugins import Plugin

_M = TypeVar("_M", bound=BaseModel)

__all__ = [
    "AppConfig",
    "ChannelConfig",
    "ChannelRetention",
    "DestinationConfig",
    "EngineSettings",
    "Retention",
    "RetryPolicy",
    "SourceConfig",
    "StoreSettings",
    "TlsSettings",
    "load_config",
]

KEBAB = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
Id = Annotated[str, Field(pattern=KEBAB.pattern, description="kebab-case id")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StoreSettings(_Strict):
    url: str = Field("", description="SQLAlchemy URL; empty = SQLite file hie.db in the data directory")
    synchronous: Literal["full", "normal"] = Field(
        "full", description="SQLite fsync policy; full survives power loss, normal only a process kill"
    )
    batch_max: int = Field(512, ge=1, le=10000, description="most rows committed in one transaction")
    pool_size: int = Field(5, ge=1, le=100)
    text_index: bool = Field(
        True,
        description="index message content for free-text search in the background; false: no "
        "indexing work (on SQLite it shares the one writer), and text searches are refused",
    )


class TlsSettings(_Strict):
    cert: Path = Field(description="PEM certificate chain of this engine")
    key: Path = Field(description="PEM private key")
    ca: Path | None = Field(None, description="PEM CA bundle to verify peers; required for mutual TLS")
    require_client_cert: bool = Field(False, description="mutual TLS on listeners")
    verify_peer: bool = Field(True, description="verify the server's certificate on outbound connections")


class MllpLimits(_Strict):
    max_message_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    max_connections: int = Field(256, ge=1)
    idle_timeout: float = Field(
        300.0, gt=0, description="seconds without a byte before a connection is closed"
    )


class Listeners(_Strict):
    mllp: MllpLimits = MllpLimits()


class Retention(_Strict):
    """How long the message store keeps messages (``engine/retention.py`` prunes them daily)."""

    content_days: int = Field(30, ge=1, description="days message bodies are kept (raw, content, sent...)")
    metadata_days: int = Field(
        365, ge=1, description="days message metadata is kept (audit records are never pruned)"
    )
    prune_at: str = Field("02:30", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", description="HH:MM, local")
    timezone: str | None = Field(
        None, description="IANA time zone of prune_at and of the archive files' dates; default: the machine's"
    )

    @field_validator("timezone")
    @classmethod
    def _zone(cls, name: str | None) -> str | None:
        if name is not None:
            try:
                ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {name!r} (an IANA name such as Asia/Shanghai)") from None
        return name

    @model_validator(mode="after")
    def _metadata_outlives_content(self) -> Retention:
        if self.metadata_days < self.content_days:
            raise ValueError(_SHORTER.format(self.metadata_days, self.content_days))
        return self


_SHORTER = (
    "metadata_days ({}) is shorter than content_days ({}): metadata is kept at least as long as content"
)


class ChannelRetention(_Strict):
    """A channel's own retention; what it leaves out comes from ``retention`` in config.yaml."""

    content_days: int | None = Field(None, ge=1, description="days this channel's message bodies are kept")
    metadata_days: int | None = Field(None, ge=1, description="days this channel's message metadata is kept")


class EngineSettings(_Strict):
    name: str = Field("HIE", description="our application name in MSH-3 of ACKs and outbound messages")
    facility: str = Field("", description="our facility in MSH-4 of ACKs")
    data_dir: Path = Path("data")
    channels_dir: Path = Path("channels")
    mappings_dir: Path = Path("mappings")
    functions_modules: list[str] = Field(
        default_factory=list,
        description="Python modules that register mapping functions (engine.mapping.functions.register)",
    )
    models_module: str = Field(
        "profiles.canonical", description="Python module whose MODELS a mapping names as model:<Name>"
    )
    plugins: list[str] = Field(
        default_factory=lambda: ["profiles.plugin"],
        description="Python modules whose PLUGIN adds config sections, destinations and tables",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class RetryPolicy(_Strict):
    max_attempts: int = Field(10, ge=1, description="attempts before the delivery is dead-lettered (errored)")
    backoff: float = Field(1.0, gt=0, description="seconds before the second attempt")
    multiplier: float = Field(2.0, ge=1.0)
    max_backoff: float = Field(300.0, gt=0)
    retry_on_ae: bool = Field(False, description="retry when downstream answers AE (content error)")

    def delay(self, attempts: int) -> float:
        return float(min(self.max_backoff, self.backoff * self.multiplier ** max(0, attempts - 1)))


class SourceConfig(BaseModel):
    """``url`` picks the connector; other keys are that connector's options (checked by it)."""

    model_config = ConfigDict(extra="allow")
    url: str


class DestinationConfig(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: Id
    url: str
    retry: RetryPolicy = RetryPolicy()
    order_by: Literal["none", "patient", "sending-facility"] = Field(
        "none", description="keep order per key; deliveries of different keys may pass each other"
    )
    lanes: int = Field(1, ge=1, le=64, description="parallel delivery lanes; ordering holds within a lane")
    batch: int | None = Field(
        None,
        ge=1,
        le=1000,
        description="deliveries sent before their status is committed (default: 1 unless idempotent)",
    )


class ChannelConfig(_Strict):
    id: Id
    description: str = ""
    enabled: bool = True
    source: SourceConfig
    ack: Literal["after_store", "after_delivery"] = "after_store"
    ack_from: str | None = Field(None, description="destination whose answer goes back (after_delivery)")
    charset: str = Field("gb18030", description="charset when MSH-18 is empty and the bytes are not UTF-8")
    steps: list[dict[str, Any]] = []
    destinations: list[DestinationConfig] = []
    retention: ChannelRetention | None = Field(None, description="this channel's own retention periods")

    @field_validator("steps")
    @classmethod
    def _one_key(cls, steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for step in steps:
            if len(step) != 1:
                raise ValueError("each step is a mapping with exactly one key: its kind (filter, map, route)")
        return steps


class RawAppConfig(BaseModel):
    # other top-level keys are plugin sections (empi: ...), validated by the plugin that claims them
    model_config = ConfigDict(extra="allow")
    engine: EngineSettings = EngineSettings()
    store: StoreSettings = StoreSettings()
    listeners: Listeners = Listeners()
    tls: dict[str, TlsSettings] = {}
    retention: Retention = Retention()
    alerts: AlertsSettings = AlertsSettings()  # engine/alerts/config.py
    console: ConsoleSettings = ConsoleSettings()  # engine/console/settings.py


class AppConfig:
    """The whole configuration: engine settings and the channels, paths resolved."""

    def __init__(
        self, path: Path, raw: RawAppConfig, channels: list[ChannelConfig], files: dict[str, Located]
    ):
        self.path = path
        self.base_dir = path.parent.resolve()
        self.engine = raw.engine
        self.store = raw.store
        self.listeners = raw.listeners
        self.tls = raw.tls
        self.retention = raw.retention
        self.alerts = raw.alerts
        self.console = raw.console
        self.channels = channels
        self.files = files  # channel id -> its located YAML, for later checks by steps/connectors
        self.plugins: list[Plugin] = []
        self.sections: dict[str, BaseModel] = {}  # plugin sections of config.yaml, validated
        self._catalog: Catalog | None = None
        self.catalog_problems: list[ConfigProblem] = []

    def mapping_catalog(self, *, raise_on_problems: bool = True) -> Catalog:
        """Every mapping and code table, compiled once (on first use) and shared by all map steps."""
        if self._catalog is None:
            from engine.mapping.catalog import load_catalog

            self._catalog, self.catalog_problems = load_catalog(
                self.resolve(self.engine.mappings_dir),
                functions_modules=self.engine.functions_modules,
                models_module=self.engine.models_module,
            )
        if raise_on_problems and self.catalog_problems:
            raise ConfigError(self.catalog_problems)
        return self._catalog

    def section(self, name: str, model: type[_M]) -> _M:
        """A plugin's section of config.yaml (its defaults when the file has none)."""
        found = self.sections.get(name)
        if found is None:
            found = self.sections[name] = model()
        if not isinstance(found, model):
            raise TypeError(f"section {name} is a {type(found).__name__}, not a {model.__name__}")
        return found

    @property
    def console_sections(self) -> list[ConsoleSection]:
        """The plugins' pages of the web console, in nav order."""
        found = [s for p in self.plugins for s in p.console]
        return sorted(found, key=lambda s: (s.order, s.id))

    @property
    def migrations(self) -> list[Path]:
        """The Alembic branches of the plugins' tables."""
        return [p.migrations for p in self.plugins if p.migrations is not None]

    def resolve(self, p: Path | str) -> Path:
        p = Path(p)
        return p if p.is_absolute() else self.base_dir / p

    @property
    def data_dir(self) -> Path:
        return self.resolve(self.engine.data_dir)

    @property
    def store_url(self) -> str:
        return self.store.url or f"sqlite:///{self.data_dir / 'hie.db'}"


def load_config(path: Path | str, *, check_connectors: bool = True) -> AppConfig:
    """Load and validate everything; raises ConfigError with every problem found."""
    path = Path(path)
    problems: list[ConfigProblem] = []
    loc = load_yaml(path)
    problems += loc.problems
    raw = RawAppConfig()
    if loc.data is not None and not loc.problems:
        if not isinstance(loc.data, dict):
            problems.append(ConfigProblem(str(path), 1, "", "config.yaml must be a mapping"))
        else:
            try:
                raw = RawAppConfig.model_validate(loc.data)
            except ValidationError as exc:
                problems += problems_from_validation(loc, exc)
    base = path.parent.resolve()
    for name, tls in raw.tls.items():
        for key in ("cert", "key", "ca"):
            value = getattr(tls, key)
            if value is not None and not (base / value).is_file():
                problems.append(loc.problem(("tls", name, key), f"file not found: {value}"))
    channels: list[ChannelConfig] = []
    files: dict[str, Located] = {}
    channels_dir = raw.engine.channels_dir
    channels_dir = channels_dir if channels_dir.is_absolute() else base / channels_dir
    if not channels_dir.is_dir():
        problems.append(loc.problem(("engine", "channels_dir"), f"directory not found: {channels_dir}"))
    else:
        seen: dict[str, str] = {}
        for file in sorted(channels_dir.glob("*.yaml")) + sorted(channels_dir.glob("*.yml")):
            ch_loc = load_yaml(file)
            problems += ch_loc.problems
            if ch_loc.problems:
                continue
            if not isinstance(ch_loc.data, dict):
                problems.append(ConfigProblem(str(file), 1, "", "a channel file must be a mapping"))
                continue
            try:
                channel = ChannelConfig.model_validate(ch_loc.data)
            except ValidationError as exc:
                problems += problems_from_validation(ch_loc, exc)
                continue
            if channel.id != file.stem:
                problems.append(
                    ch_loc.problem(("id",), f"channel id {channel.id!r} differs from file name {file.stem!r}")
                )
            if channel.id in seen:
                problems.append(
                    ch_loc.problem(
                        ("id",), f"duplicate channel id {channel.id!r} (also in {seen[channel.id]})"
                    )
                )
                continue
            seen[channel.id] = str(file)
            problems += _check_channel(channel, ch_loc, raw)
            channels.append(channel)
            files[channel.id] = ch_loc
    problems += check_alerts(raw.alerts, loc, {c.id for c in channels})
    app = AppConfig(path, raw, channels, files)
    problems += _load_plugins(app, raw, loc)
    if check_connectors:
        app.mapping_catalog(raise_on_problems=False)
        problems += app.catalog_problems
        from engine.registry import check_channels  # connectors import config; import late

        problems += check_channels(app)
        for plugin in app.plugins:
            for check in plugin.checks:
                problems += check(app)
    if problems:
        raise ConfigError(problems)
    return app


def _load_plugins(app: AppConfig, raw: RawAppConfig, loc: Located) -> list[ConfigProblem]:
    """Import the plugins, register their destinations, validate the sections they claim."""
    from engine.plugins import load_plugins
    from engine.registry import register_destination, register_source, register_step

    plugins, problems = load_plugins(raw.engine.plugins, str(app.path))
    app.plugins = plugins
    claimed: dict[str, type[BaseModel]] = {}
    for plugin in plugins:
        claimed.update(plugin.sections)
        for cls in plugin.destinations:
            register_destination(cls)
        for source in plugin.sources:
            register_source(source)
        for step in plugin.steps:
            register_step(step)
    for key, value in (raw.model_extra or {}).items():
        model = claimed.get(key)
        if model is None:
            problems.append(loc.problem((key,), "unknown field"))
            continue
        try:
            app.sections[key] = model.model_validate(value if value is not None else {})
        except ValidationError as exc:
            problems += problems_from_validation(loc, exc, (key,))
    from engine.console.sections import check_sections

    for text in check_sections(app.console_sections):
        problems.append(loc.problem(("engine", "plugins"), text))
    return problems


def _check_channel(channel: ChannelConfig, loc: Located, raw: RawAppConfig) -> list[ConfigProblem]:
    out: list[ConfigProblem] = []
    ids: set[str] = set()
    for i, dest in enumerate(channel.destinations):
        if dest.id in ids:
            out.append(loc.problem(("destinations", i, "id"), f"duplicate destination id {dest.id!r}"))
        ids.add(dest.id)
    if channel.ack == "after_delivery":
        if not channel.ack_from:
            out.append(loc.problem(("ack_from",), "ack: after_delivery needs ack_from: <destination id>"))
        elif channel.ack_from not in ids:
            out.append(loc.problem(("ack_from",), f"no destination with id {channel.ack_from!r}"))
    elif channel.ack_from:
        out.append(loc.problem(("ack_from",), "ack_from is only used with ack: after_delivery"))
    if channel.retention is not None:
        content = channel.retention.content_days or raw.retention.content_days
        kept = channel.retention.metadata_days or raw.retention.metadata_days
        if kept < content:
            out.append(loc.problem(("retention",), _SHORTER.format(kept, content)))
    from engine.hl7v2.charset import codec_for

    if codec_for(channel.charset) is None:
        out.append(loc.problem(("charset",), f"unknown charset {channel.charset!r}"))
    for key in ("tls",):
        for path, section in ((("source",), channel.source.model_extra or {}),):
            name = section.get(key)
            if name is not None and name not in raw.tls:
                out.append(loc.problem((*path, key), f"no TLS settings named {name!r} in config.yaml"))
    for i, dest in enumerate(channel.destinations):
        name = (dest.model_extra or {}).get("tls")
        if name is not None and name not in raw.tls:
            out.append(
                loc.problem(("destinations", i, "tls"), f"no TLS settings named {name!r} in config.yaml")
            )
    return out
