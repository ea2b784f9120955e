"""URI scheme -> connector class, step name -> step class; and the checks ``hie check`` runs on them."""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from engine.connectors.base import Destination, Source, parse_url
from engine.errors import ConfigProblem
from engine.steps.base import Step
from engine.yamlloc import problems_from_validation

if TYPE_CHECKING:
    from engine.config import AppConfig, ChannelConfig

__all__ = [
    "DESTINATIONS",
    "SOURCES",
    "STEPS",
    "build_steps",
    "check_channels",
    "register_destination",
    "register_source",
    "register_step",
    "tls_context",
]


def _sources() -> dict[str, type[Source]]:
    from engine.connectors import file, http, memory, metrics, mllp
    from engine.console.source import ConsoleSource

    classes = (
        mllp.MllpSource,
        file.FileSource,
        http.HttpSource,
        memory.MemorySource,
        metrics.MetricsSource,
        ConsoleSource,
    )
    return {c.scheme: c for c in classes}


def _destinations() -> dict[str, type[Destination]]:
    from engine.connectors import file, http, memory, mllp

    classes = (mllp.MllpDestination, file.FileDestination, http.HttpDestination, memory.MemoryDestination)
    out: dict[str, type[Destination]] = {c.scheme: c for c in classes}
    out["https"] = http.HttpDestination
    return out


def _steps() -> dict[str, type[Step]]:
    from engine.steps import filter, map, route

    return {c.kind: c for c in (filter.FilterStep, map.MapStep, route.RouteStep)}


SOURCES = _sources()
DESTINATIONS = _destinations()
STEPS = _steps()


def register_source(cls: type[Source]) -> None:
    """A plugin's source (``engine.plugins``), named by its scheme in channel files."""
    _register(SOURCES, cls, "source")


def register_destination(cls: type[Destination]) -> None:
    """A plugin's destination (``engine.plugins``), named by its scheme in channel files."""
    _register(DESTINATIONS, cls, "destination")


def register_step(cls: type[Step]) -> None:
    """A plugin's pipeline step (``engine.plugins``), named by its kind in channel files."""
    known = STEPS.get(cls.kind)
    if known is not None and known is not cls:
        raise ValueError(f"step {cls.kind!r} is taken by {known.__module__}")
    STEPS[cls.kind] = cls


def _register(table: dict[str, Any], cls: type[Source] | type[Destination], kind: str) -> None:
    known = table.get(cls.scheme)
    if known is not None and known is not cls:
        raise ValueError(f"{kind} scheme {cls.scheme!r} is taken by {known.__module__}")
    table[cls.scheme] = cls


# options handled by the engine itself, not by the connector
_DEST_ENGINE_KEYS = {"id", "url", "retry", "order_by", "lanes", "batch"}


def source_options(channel: ChannelConfig) -> tuple[type[Source], Any]:
    url = parse_url(channel.source.url)
    cls = SOURCES[url.scheme]
    return cls, cls.Options.model_validate(channel.source.model_extra or {})


def destination_options(channel: ChannelConfig, index: int) -> tuple[type[Destination], Any]:
    dest = channel.destinations[index]
    url = parse_url(dest.url)
    cls = DESTINATIONS[url.scheme]
    extra = {k: v for k, v in (dest.model_extra or {}).items() if k not in _DEST_ENGINE_KEYS}
    return cls, cls.Options.model_validate(extra)


def build_steps(channel: ChannelConfig, app: AppConfig) -> list[Step]:
    steps = []
    for spec in channel.steps:
        ((kind, options),) = spec.items()
        cls = STEPS[kind]
        steps.append(cls(cls.Options.model_validate(options or {}), channel, app))
    return steps


def check_channels(app: AppConfig) -> list[ConfigProblem]:
    """Connector schemes and options, step kinds and options, and clashing listeners."""
    problems: list[ConfigProblem] = []
    listeners: dict[tuple[str, int], str] = {}
    http_paths: dict[tuple[str, int], dict[str, tuple[str, object]]] = {}
    for channel in app.channels:
        loc = app.files[channel.id]
        url = parse_url(channel.source.url)
        if url.scheme not in SOURCES:
            problems.append(
                loc.problem(
                    ("source", "url"),
                    f"unknown source connector scheme {url.scheme!r} (known: {', '.join(sorted(SOURCES))})",
                )
            )
        else:
            cls = SOURCES[url.scheme]
            problem = _check_url(cls, url)
            if problem:
                problems.append(loc.problem(("source", "url"), problem))
            try:
                cls.Options.model_validate(channel.source.model_extra or {})
            except ValidationError as exc:
                problems += problems_from_validation(loc, exc, ("source",))
            port = _port(url)
            if url.scheme in ("mllp", "http") and port is not None and channel.enabled:
                key = (url.hostname or "", port)
                other = listeners.get(key)
                # HTTP sources on one host:port share a server; MLLP ones cannot
                if other is not None and (url.scheme == "mllp" or other.startswith("mllp:")):
                    problems.append(
                        loc.problem(
                            ("source", "url"), f"port {port} is already used by {other.split(':', 1)[1]}"
                        )
                    )
                listeners.setdefault(key, f"{url.scheme}:channel {channel.id}")
                if url.scheme == "http":
                    problems += _check_http_sharing(channel, url, key, http_paths, loc)
        for i, dest in enumerate(channel.destinations):
            durl = parse_url(dest.url)
            if durl.scheme not in DESTINATIONS:
                problems.append(
                    loc.problem(
                        ("destinations", i, "url"),
                        f"unknown destination connector scheme "
                        f"{durl.scheme!r} (known: {', '.join(sorted(DESTINATIONS))})",
                    )
                )
                continue
            dcls = DESTINATIONS[durl.scheme]
            problem = _check_url(dcls, durl)
            if problem:
                problems.append(loc.problem(("destinations", i, "url"), problem))
            try:
                destination_options(channel, i)
            except ValidationError as exc:
                problems += problems_from_validation(loc, exc, ("destinations", i))
            if dcls.answers_sender and (channel.ack != "after_delivery" or channel.ack_from != dest.id):
                problems.append(
                    loc.problem(
                        ("destinations", i, "url"),
                        f"{durl.scheme}: answers the sender itself: the channel needs ack: after_delivery "
                        f"and ack_from: {dest.id}",
                    )
                )
        for i, spec in enumerate(channel.steps):
            ((kind, options),) = spec.items()
            if kind not in STEPS:
                problems.append(
                    loc.problem(
                        ("steps", i, kind), f"unknown step {kind!r} (known: {', '.join(sorted(STEPS))})"
                    )
                )
                continue
            step_cls = STEPS[kind]
            try:
                step = step_cls(step_cls.Options.model_validate(options or {}), channel, app)
            except ValidationError as exc:
                problems += problems_from_validation(loc, exc, ("steps", i, kind))
                continue
            for path, message in step.problems():
                problems.append(loc.problem(("steps", i, kind, *path), message))
    return problems


def _check_http_sharing(
    channel: ChannelConfig,
    url: Any,
    key: tuple[str, int],
    http_paths: dict[tuple[str, int], dict[str, tuple[str, object]]],
    loc: Any,
) -> list[ConfigProblem]:
    """HTTP sources may share a host:port, but not a path, and all must agree on TLS."""
    tls = (channel.source.model_extra or {}).get("tls")
    paths = http_paths.setdefault(key, {})
    out = []
    path = url.path or "/"
    if path in paths:
        other = paths[path][0]
        out.append(
            loc.problem(("source", "url"), f"path {path} on port {key[1]} is already used by channel {other}")
        )
    for other, other_tls in paths.values():
        if other_tls != tls:
            out.append(
                loc.problem(("source", "tls"), f"channel {other} on the same port uses tls {other_tls!r}")
            )
            break
    paths[path] = (channel.id, tls)
    return out


def _port(url: Any) -> int | None:
    try:
        return int(url.port) if url.port is not None else None
    except ValueError:
        return None


def _check_url(cls: type[Source] | type[Destination], url: Any) -> str | None:
    try:
        if url.scheme in ("mllp", "http", "https") and url.port is None:
            return f"{url.scheme} URL needs a port: {url.geturl()}"
    except ValueError as exc:  # urllib raises on a non-numeric or out-of-range port
        return f"bad port in {url.geturl()}: {exc}"
    return cls.check_url(url)


def tls_context(app: AppConfig, name: str | None, *, server: bool) -> ssl.SSLContext | None:
    """An SSL context from the named ``tls:`` entry of config.yaml (TLS 1.2+)."""
    if name is None:
        return None
    t = app.tls[name]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(app.resolve(t.cert), app.resolve(t.key))
    if t.ca is not None:
        ctx.load_verify_locations(app.resolve(t.ca))
    if server:
        ctx.verify_mode = ssl.CERT_REQUIRED if t.require_client_cert else ssl.CERT_NONE
    elif not t.verify_peer:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx
