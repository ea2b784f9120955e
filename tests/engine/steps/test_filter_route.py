"""Filter and route steps decide on header fields and on any field by path."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from engine.config import ChannelConfig, load_config
from engine.hl7v2.peek import peek
from engine.message import Message
from engine.steps.filter import FilterOptions, FilterStep
from engine.steps.route import RouteOptions, RouteStep
from tests.conftest import hl7_message


@pytest.fixture
def channel() -> ChannelConfig:
    return ChannelConfig.model_validate(
        {
            "id": "adt",
            "source": {"url": "memory://in"},
            "destinations": [{"id": "a", "url": "memory://a"}, {"id": "b", "url": "memory://b"}],
        }
    )


@pytest.fixture
def app(tmp_path: Path) -> Any:
    (tmp_path / "channels").mkdir()
    (tmp_path / "config.yaml").write_text("engine: {}\n")
    return load_config(tmp_path / "config.yaml")


def message(text: str) -> Message:
    m = Message(id=1, channel_id="adt", raw=text.encode(), received_at=datetime.now(UTC), content=text)
    m.header = peek(text)
    return m


@pytest.mark.parametrize(
    ("options", "text", "filtered"),
    [
        ({"message_type": ["ADT^A01", "ADT^A04"]}, hl7_message("1"), False),
        ({"message_type": ["ADT^A04"]}, hl7_message("1"), True),
        ({"message_type": "ADT"}, hl7_message("1", event="A08"), False),
        ({"message_type": ["ORU^*"]}, hl7_message("1"), True),
        ({"sending_facility": "HOSP_A"}, hl7_message("1"), False),
        ({"sending_facility": ["HOSP_B"]}, hl7_message("1"), True),
        ({"fields": [{"path": "PID.8", "in": ["M", "F"]}]}, hl7_message("1"), False),
        ({"fields": [{"path": "PV1.2", "equals": "O"}]}, hl7_message("1"), True),
        ({"fields": [{"path": "PID.3.1", "matches": r"\d{6}"}]}, hl7_message("1"), False),
        ({"fields": [{"path": "PID.19", "exists": True}]}, hl7_message("1"), True),
        ({"message_type": "ADT^A01", "exclude": True}, hl7_message("1"), True),
        ({"message_type": "ADT^A01", "exclude": True}, hl7_message("1", event="A08"), False),
    ],
)
def test_filter(options: dict[str, Any], text: str, filtered: bool, channel: ChannelConfig, app: Any) -> None:
    step = FilterStep(FilterOptions.model_validate(options), channel, app)
    assert step.apply(message(text)).filtered is filtered


def test_route_unions_matching_rules_and_falls_back(channel: ChannelConfig, app: Any) -> None:
    step = RouteStep(
        RouteOptions.model_validate(
            {
                "rules": [
                    {"when": {"message_type": "ADT^A01"}, "to": ["a"]},
                    {"when": {"fields": [{"path": "PV1.2", "equals": "I"}]}, "to": ["b"]},
                ],
                "otherwise": ["b"],
            }
        ),
        channel,
        app,
    )
    m = message(hl7_message("1"))
    assert not step.apply(m).filtered and m.routes == {"a", "b"}
    m = message(hl7_message("2", event="A08").replace("PV1|1|I|", "PV1|1|O|"))
    assert not step.apply(m).filtered and m.routes == {"b"}


def test_route_without_match_or_fallback_filters(channel: ChannelConfig, app: Any) -> None:
    step = RouteStep(
        RouteOptions.model_validate({"rules": [{"when": {"message_type": "ORU"}, "to": ["a"]}]}), channel, app
    )
    result = step.apply(message(hl7_message("1")))
    assert result.filtered and "no route rule held" in result.reason


def test_a_condition_needs_exactly_one_test() -> None:
    with pytest.raises(ValueError, match="exactly one of"):
        FilterOptions.model_validate({"fields": [{"path": "PID.8", "equals": "M", "in": ["F"]}]})
