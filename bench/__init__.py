"""`make bench`: paysaga's throughput, latency and CPU per order beside a bare Temporal saga
of the same shape, its history events, duplicate notifications and settlement's SQL, on
SQLite and PostgreSQL, in one run. Run from the checkout (`python -m bench`), not installed.
"""
