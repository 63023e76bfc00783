"""Independent, obviously-correct references for docs/spec.md, one module per section.

Plain numpy on flat parameter vectors, one worker at a time, following the
equations of docs/spec.md literally. Only the gradient of the model (jax.grad, not
jitted) and the random batch times (drawn from the same timing model) are
shared with the code under test.

- ``environment_s1``: §1, the asynchronous environment — the data stream and the
  event-at-a-time simulation (with §6.0's restart events, §6.2's discards and
  §6.5's local-step workers, which change only what a job is).
- ``update_rules_s2``: §2, the master update rules (and their §6.1, §6.5, §6.6
  variants), on flat float64 vectors.
- ``rounds_s6_0``: §6.0's synchronous rounds.
- ``rennala_s6_4``: §6.4, Rennala SGD's round times.
"""
