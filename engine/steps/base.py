"""The step interface."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

from engine.message import Message

if TYPE_CHECKING:
    from engine.config import AppConfig, ChannelConfig

__all__ = ["Step", "StepOptions", "StepResult"]


class StepOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


@dataclass(frozen=True, slots=True)
class StepResult:
    filtered: bool = False
    reason: str = ""


CONTINUE = StepResult()


class Step(ABC):
    kind: ClassVar[str]
    Options: ClassVar[type[StepOptions]]

    def __init__(self, options: Any, channel: ChannelConfig, app: AppConfig) -> None:
        self.options = options
        self.channel = channel
        self.app = app

    def problems(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Problems only visible with the whole channel (e.g. an unknown destination); path is relative."""
        return []

    @abstractmethod
    def apply(self, msg: Message) -> StepResult:
        """Run on one message; raise MessageError to reject it with a reason the sender is told."""
