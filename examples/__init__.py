"""Examples of user code that plugs into dana_jax's experiments (not installed)."""
