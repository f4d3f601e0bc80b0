"""One exception tree; AWS, HTTP and OS errors are translated at the boundary."""


class ForwarderError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigError(ForwarderError):
    """The configuration is invalid; `problems` holds one `key.path: message` per line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class AckAccountingError(ForwarderError):
    """An ack was expected, resolved or sealed out of turn: a bug, never input's fault."""


class StateError(ForwarderError):
    """The state store could not read or write (disk full, unreachable, conflict)."""


class VersionConflict(StateError):
    """A compare-and-set write lost against a concurrent writer."""


class DecodeError(ForwarderError):
    """Bytes that are not a WorkMail record; `reason` is a short machine-readable code."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class MappingError(ForwarderError):
    """A record that cannot be classified or mapped; `reason` as for DecodeError."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class SinkFatalError(ForwarderError):
    """The sink refuses us for good until an operator acts (HEC/ES 401 or 403)."""
