"""Errors a user can fix: the CLI prints them as one line and exits non-zero."""


class UserError(Exception):
    """A mistake in input, config or environment that the user can fix (no traceback shown)."""


class MissingWeightsError(UserError):
    """A model checkpoint is not on disk; the message names the download command."""

    def __init__(self, model: str, where: str, command: str):
        super().__init__(f"{model}: no weights at {where}. Download them with: {command}")
        self.model, self.where, self.command = model, where, command
