"""What the environment (docs/spec.md §8) costs: per master step of the compiled program,
and to build the schedule.

    python -m benchmarks.environment [--model mlp] [--workers 16] [--steps 300]
        [--schedule-workers 256] [--schedule-steps 1000000]
        [--out benchmarks/results/environment.jsonl]

Engine rows: NAG-ASGD (and DANA-GA), ``steps`` and ``blocks`` execution, one replica, the
same heterogeneous compute timing, with every other part off, then links on (latency,
bandwidth, a master queue) with straggler slowdowns, then with failures as well
(up/down periods). Links and slowdowns change only the times, so the program is the same;
failures add FAIL and REJOIN events (scan rows), so a master step costs more by the events
it carries: the rows give ms per master step and per event. Schedule rows: the time to
build the events of ``--schedule-steps`` master steps for ``--schedule-workers`` workers,
every part off (§1's code) and every part on (the environment's event loop). Rows are
appended to ``--out`` with device, versions and the command.
"""

from __future__ import annotations

import argparse
import sys
import time

import jax

import dana_jax as dj
from benchmarks import run
from dana_jax.environment import make_environment


def environments(mean_time: float = 128.0) -> dict:
  """The environments compared, each every part off but compute, or some on."""
  links = dict(latency=8.0, bandwidth=2e6, master_bandwidth=4e7)
  speed = dict(name="straggler_chain", normal_time=100 * mean_time, slow_time=10 * mean_time,
               factor=4.0)
  failures = dict(name="up_down", mtbf=200 * mean_time, mttr=20 * mean_time)
  compute = dict(name="heterogeneous")
  return {
      "off": make_environment(compute=compute),
      "links+queue+slowdowns": make_environment(compute=compute, links=links, speed=speed),
      "links+queue+slowdowns+failures": make_environment(compute=compute, links=links,
                                                         speed=speed, availability=failures),
  }


def main(argv=None):
  argv = sys.argv[1:] if argv is None else argv
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model", default="mlp", choices=sorted(run.MODELS))
  parser.add_argument("--workers", type=int, default=16)
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--steps", type=int, default=300)
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--algorithms", default="nag,dana_ga")
  parser.add_argument("--executions", default="steps,blocks")
  parser.add_argument("--schedule-workers", type=int, default=256)
  parser.add_argument("--schedule-steps", type=int, default=1_000_000)
  parser.add_argument("--out", default=str(run.RESULTS.parent / "environment.jsonl"))
  args = parser.parse_args(argv)
  env = {**run.environment(argv),
         "command": "python -m benchmarks.environment " + " ".join(argv)}
  factory, shape = run.MODELS[args.model]
  model = dj.flax_model(factory(), shape)
  x, y = run.synthetic(shape, 16 * args.batch, 10)
  n = args.workers
  print(f"{args.model}, N={n}, B={args.batch}, {args.steps} steps per chunk, {env['device']}",
        flush=True)
  print(f"{'algorithm':10s}{'execution':>10s}  {'environment':32s}{'ms/step':>9s}"
        f"{'ev/step':>9s}{'ms/event':>10s}{'vs off':>8s}", flush=True)
  for algorithm in args.algorithms.split(","):
    for execution in args.executions.split(","):
      base = None
      for label, environment in environments().items():
        cell = argparse.Namespace(algorithm=algorithm, algorithm_options=None,
                                  environment=environment, execution=execution,
                                  block_size=None, timing="heterogeneous", replicas=1,
                                  batch=args.batch, steps=args.steps, repeats=args.repeats,
                                  mesh_workers=1)
        row = {"what": "environment step", "algorithm": algorithm, "environment": label,
               "model": args.model, "num_workers": n, "batch_size": args.batch,
               "steps": args.steps, **env, **run.measure_engine(model, x, y, cell, n)}
        spec = dj.RunSpec.create(algorithm, num_workers=n, batch_size=args.batch,
                                 num_examples=x.shape[0], environment=environment,
                                 execution=execution, num_params=1000)
        sched = dj.engine.plan.schedules(spec, 3000)[0]
        row["events_per_step"] = sched.num_events / sched.num_steps
        row["seconds_per_event"] = row["seconds_per_step"] / row["events_per_step"]
        base = base or row
        row["over_off"] = row["seconds_per_step"] / base["seconds_per_step"]
        row["per_event_over_off"] = row["seconds_per_event"] / base["seconds_per_event"]
        print(f"{algorithm:10s}{execution:>10s}  {label:32s}"
              f"{1e3 * row['seconds_per_step']:9.3f}{row['events_per_step']:9.3f}"
              f"{1e3 * row['seconds_per_event']:10.3f}{row['over_off']:8.2f}", flush=True)
        run.append(args.out, [row])
        jax.clear_caches()
  for label, environment in environments().items():
    began = time.perf_counter()
    sched = dj.make_schedule(environment.compute, args.schedule_workers, args.schedule_steps,
                             seed=0, block_size=args.schedule_workers,
                             environment=environment, num_params=270_000)
    seconds = time.perf_counter() - began
    row = {"what": "environment schedule", "environment": label,
           "num_workers": args.schedule_workers, "steps": args.schedule_steps,
           "events": sched.num_events, "seconds": seconds, **env}
    print(f"schedule N={args.schedule_workers}, {args.schedule_steps} steps, {label}: "
          f"{sched.num_events} events in {seconds:.1f} s", flush=True)
    run.append(args.out, [row])


if __name__ == "__main__":
  main()
