"""Exceptions a user can act on; the CLI prints their message as one line and exits nonzero."""


class JointNASError(Exception):
    """Base class for errors caused by input or configuration, not by a bug."""


class ConfigError(JointNASError, ValueError):
    """A bad option value, storage URL or study setting."""


class InfeasibleConstraintError(JointNASError, ValueError):
    """No candidate of the space can satisfy the resource constraint."""


class DatasetError(JointNASError, ValueError):
    """Bad dataset input; str(e) is one clear line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))
