"""A chaos run of the whole system: `python -m chaos` (or `make chaos`).

config.py     what a run does: orders, seconds, seed, database, rates
plan.py       the fault schedule (which process is killed when) and each order's
              scenario, drawn from the seed: pure
postgres.py   a PostgreSQL server of the run's own, which it crashes and restarts
system.py     Temporal, the sandbox, the worker and the API on free ports, killed
              (SIGKILL) and restarted on the schedule; anything that dies on its own
              is counted and restarted
client.py     the API as a client that retries with the same Idempotency-Key
workload.py   the orders: paid (notifications normal, duplicated, delayed, dropped),
              declined, timed out, cancelled, cancelled racing a payment, paid late,
              refunded by racing requests
facts.py      what each side holds at the end: our database, the sandbox's store,
              Temporal's workflows
checker.py    the verdict on those facts against what the client did: pure
report.py     the figures, printed and written as JSON
run.py        the whole run: start, load and break, drain, check, report
"""
