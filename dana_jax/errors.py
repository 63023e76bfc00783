"""The one exception type of dana_jax.

Every value the library refuses — an argument, an option, a timing model, data
that does not fit the model — raises :class:`ConfigError`, a ``ValueError``
whose message is one line: ``field=value is not allowed: what is allowed.``
Catch it to report a user's mistake without a traceback::

    try:
      sim = dj.Simulator(model, "ga", x, y, num_workers=0)
    except dj.ConfigError as e:
      print(f"error: {e}")
"""

from __future__ import annotations


class ConfigError(ValueError):
  """A value given to dana_jax that is not allowed; the message names it in one line."""
