"""The project's error types: one small hierarchy, turned into one clear line by the CLI."""


class PosetalkError(Exception):
    """Base of every error this project raises on purpose."""


class InputError(PosetalkError):
    """Something the user gave us is unusable."""


class NotAnImageError(InputError):
    """The file is missing or cannot be decoded as an image."""


class ImageTooLargeError(InputError):
    """The image exceeds the pixel limit we are willing to decode."""


class NoFaceError(InputError):
    """No face was found in the portrait."""


class FaceTooSmallError(InputError):
    """The face is smaller than the minimum size the renderer can animate."""


class MotionFileError(InputError):
    """A motion file has wrong shapes, unknown blendshape names or an unreadable format."""


class AvatarCacheError(PosetalkError):
    """A cached avatar could not be read back (it is then rebuilt)."""
