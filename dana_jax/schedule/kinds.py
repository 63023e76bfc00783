"""Event kinds and job outcomes of the asynchronous schedule (docs/spec.md §1, §6.0, §8.2).

NOOP marks the padding the engine adds for static shapes. A DISCARD is an arrival that is
not applied (the worker reads again, its batch spent); the engine treats it as a RESTART,
the schedule and the counts tell them apart. A FAIL is a job lost to its worker going down
(nothing is applied; the engine treats it as a no-op); a REJOIN is the worker coming back,
a restart (it reads again, its batch kept).
"""

APPLY, RESTART, NOOP, DISCARD, FAIL, REJOIN = 0, 1, 2, 3, 4, 5

# A job's outcome (JobRecords.outcome, docs/spec.md §8.5).
JOB_APPLIED, JOB_DISCARDED, JOB_CANCELLED, JOB_FAILED, JOB_IN_FLIGHT = 0, 1, 2, 3, 4
JOB_OUTCOMES = ("applied", "discarded", "cancelled", "failed", "in_flight")
