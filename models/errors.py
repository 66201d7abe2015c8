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


class CorpusError(PosetalkError):
    """The training corpus cannot be built or read."""


class NoTTSEngineError(CorpusError):
    """No usable text-to-speech engine (or not the one asked for) is installed."""


class TTSError(CorpusError):
    """A TTS engine ran but gave no audio or no usable phone timings."""


class VideoError(InputError):
    """A talking-head video cannot be used: unreadable, no audio track, no face."""


class NoVideosError(InputError):
    """The video folder holds no mp4, mov or webm files."""


class AudioFileError(InputError):
    """An audio file is missing, unreadable, or holds no audio stream."""


class CheckpointError(PosetalkError):
    """A checkpoint is missing, corrupt, or does not match the model it is loaded into."""


class PoseModelError(PosetalkError):
    """The pose model was asked for something it cannot do (a lookahead or step count out of range)."""


class AudioInputError(InputError):
    """PCM pushed into a live session is unusable: a bad sample rate, shape, type or values."""
