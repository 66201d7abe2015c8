"""The engine's errors (raised by engine/: its sessions, its scheduler, its backends)."""

from posetalk.models.errors import PosetalkError


class EngineError(PosetalkError):
    """The real-time engine cannot do what was asked (see the subclasses)."""


class SessionLimitError(EngineError):
    """The engine already runs as many sessions as it was configured to allow."""


class SessionClosedError(EngineError):
    """The session was closed (or its engine was): it takes no more audio or control."""


class BackendError(EngineError):
    """The compute backend asked for is not available on this machine (e.g. "cuda" without CUDA)."""
