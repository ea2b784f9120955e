"""``hie check`` on the repository's configuration: a forward target it cannot use, a syslog-tls
source without TLS material, a syslog URL without a port; the sample channel loads."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from engine.config import AppConfig, load_config
from engine.errors import ConfigError
from tests.profiles.atna.peers import udp_channel

MakeApp = Callable[..., AppConfig]
ROOT = Path(__file__).parents[3]


def _problems(make: Callable[[], AppConfig]) -> str:
    with pytest.raises(ConfigError) as caught:
        make()
    return "\n".join(str(p) for p in caught.value.problems)


def test_forward_targets_hie_check_refuses(make_app: MakeApp) -> None:
    assert "forward_to must be syslog-tls" in _problems(
        lambda: make_app({}, extra="atna: {forward_to: 'mllp://arr:2575'}\n")
    )
    assert "forward_to syslog-tls needs tls" in _problems(
        lambda: make_app({}, extra="atna: {forward_to: 'syslog-tls://arr.example:6514'}\n")
    )
    assert "no TLS settings named 'arr'" in _problems(
        lambda: make_app({}, extra="atna: {forward_to: 'syslog-tls://arr.example:6514', tls: arr}\n")
    )


def test_syslog_sources_hie_check_refuses(make_app: MakeApp) -> None:
    no_tls = udp_channel(6514, "arr-tls").replace("syslog-udp", "syslog-tls")
    assert "syslog-tls needs tls" in _problems(lambda: make_app({"arr-tls": no_tls}))
    no_port = udp_channel(5514).replace(":5514", "")
    assert "syslog-udp URL needs a port" in _problems(lambda: make_app({"arr": no_port}))


def test_the_sample_channel_loads() -> None:
    app = load_config(ROOT / "config.yaml")
    (channel,) = [c for c in app.channels if c.id == "atna-repository"]
    assert channel.source.url == "syslog-udp://127.0.0.1:5514"
