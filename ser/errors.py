"""The errors SER Studio raises on purpose.

Everything the library rejects is an ``SERError``; pages and the command line
catch this root type and show its message. Any other exception is a bug.
"""

from __future__ import annotations


class SERError(Exception):
    """Root of every error SER Studio raises deliberately."""


class ConfigError(SERError, ValueError):
    """A setting is out of range or unknown (epochs, architecture, protocol, strategy)."""


class AudioDecodeError(SERError):
    """The input could not be decoded as audio (empty, truncated, not audio)."""


class AudioContentError(SERError):
    """The audio decoded but is unusable (too short, silent, non-finite)."""


class NoSpeechError(AudioContentError):
    """The audio has sound but no speech in it: the voice-activity detector heard no voice."""


class ProfileError(SERError):
    """A voice profile file is damaged, foreign or made for another model."""


class ModelError(SERError):
    """A model bundle is missing, incomplete or does not match its card."""


class DatasetError(SERError):
    """A corpus folder or manifest was not found, is empty or is malformed."""


class TrainingError(SERError):
    """A training run could not start or did not finish."""
