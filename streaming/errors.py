"""The server's and the WebRTC client's errors (raised by streaming/ and clients/)."""

from posetalk.models.errors import PosetalkError


class StreamingError(PosetalkError):
    """The server or the WebRTC client cannot do what was asked (see the subclasses)."""


class ServerConfigError(StreamingError):
    """The server's settings are unsafe or invalid (e.g. a non-loopback address without a token)."""


class SignalingError(StreamingError):
    """An SDP offer or answer, or a control message, is malformed or cannot be used."""


class UnknownAvatarError(StreamingError):
    """No avatar with that id was uploaded to (or prepared by) this server."""
