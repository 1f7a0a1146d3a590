"""One error type for "these fields are wrong, and this is what each allows"."""

from __future__ import annotations

from collections.abc import Mapping


class FieldErrors(ValueError):
    """Bad values; ``errors`` maps each field (option, variable) to what is allowed."""

    separator = "; "
    line_format = "{field}: {message}"

    def __init__(self, errors: Mapping[str, str]):
        self.errors = dict(errors)
        super().__init__(
            self.separator.join(self.line_format.format(field=k, message=v) for k, v in self.errors.items())
        )


class MultilineFieldErrors(FieldErrors):
    """The same, one field per indented line (for start-up messages)."""

    separator = "\n"
    line_format = "  {field}: {message}"
