"""The one exception tree of the engine.

Each error knows how it is told in HL7 v2 terms (table 0357 error code, ERR-2 location), so that
connectors turn any of them into a protocol answer in exactly one place (``hl7v2.ack``).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ChannelError",
    "CharsetError",
    "ConfigError",
    "ConfigProblem",
    "DeliveryError",
    "FramingError",
    "HieError",
    "MessageError",
    "PermanentDeliveryError",
]


class HieError(Exception):
    """Base of every error the engine raises on purpose."""


@dataclass(frozen=True)
class ConfigProblem:
    """One problem found in a configuration file, with where it is."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        field = f" [{self.field}]" if self.field else ""
        return f"{where}:{field} {self.message}"


class ConfigError(HieError):
    """The configuration cannot be used; carries every problem found, not only the first."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class MessageError(HieError):
    """A received message cannot be accepted.

    ``hl7_code`` is an HL7 table 0357 code (100 segment sequence error, 101 required field missing,
    102 data type error, 103 table value not found, 200 unsupported message type, 207 application
    internal error...). ``location`` is an ERR-2 location such as ``MSH^1^10``. ``reject`` chooses AR
    (the message itself is unacceptable) over AE (an error in its content).
    """

    def __init__(self, text: str, *, hl7_code: str = "207", location: str = "", reject: bool = False) -> None:
        super().__init__(text)
        self.text = text
        self.hl7_code = hl7_code
        self.location = location
        self.reject = reject


class FramingError(MessageError):
    """The bytes on the wire are not a well-formed MLLP frame or not HL7 v2 at all."""

    def __init__(self, text: str) -> None:
        super().__init__(text, hl7_code="100", reject=True)


class CharsetError(MessageError):
    """MSH-18 names an unknown character set, or the bytes do not decode in the declared one."""


class ChannelError(HieError):
    """A channel cannot process a message for a reason that is the engine's, not the sender's."""


class DeliveryError(HieError):
    """A destination could not take a message now; the queue retries it."""


class PermanentDeliveryError(DeliveryError):
    """A destination refused a message for good (e.g. AE from downstream); no retry helps.

    ``ack_code`` is the downstream MSA-1 when there was one, so a retry policy may still choose to
    retry AE (``retry_on_ae``).
    """

    def __init__(self, text: str, *, ack_code: str = "") -> None:
        super().__init__(text)
        self.ack_code = ack_code
