"""The errors a user can act on; `main` prints each as one line and exits non-zero.

Library code raises the precise subclass with the offending value and the
fix in its message. Anything else is a bug and keeps its traceback.
"""


class UserError(Exception):
  """An expected failure with a message that says how to fix it."""


class DataError(UserError, ValueError):
  """A data source is missing or malformed; the message says where and why."""


class ConfigError(UserError, ValueError):
  """A config value is out of range; the message names the field."""


class WorkdirError(UserError, RuntimeError):
  """The workdir cannot be used as asked; the message says how to fix it."""


class InputError(UserError, ValueError):
  """A text, input file or flag given to the model is unusable."""


class TextTypeError(UserError, TypeError):
  """A text given to the model is not a string; the message names which."""


class NonFiniteLossError(UserError, RuntimeError):
  """The loss became NaN or inf."""
