"""Exceptions raised by lifeiqa; each message names what was expected and what was found."""


class LifeIQAError(Exception):
    """Base class of lifeiqa's errors."""


class BackboneError(LifeIQAError, ValueError):
    """A backbone name or architecture that cannot serve Life-IQA."""


class WeightsError(LifeIQAError, ValueError):
    """Weights that cannot be found, read, or fitted to the model."""


class CheckpointError(WeightsError):
    """A checkpoint file whose format, config or tensors do not match."""


class UnknownModelError(LifeIQAError, KeyError):
    """A preset name that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])
