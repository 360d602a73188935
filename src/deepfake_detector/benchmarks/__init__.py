"""The benchmark harness behind `make bench`: inference, preprocessing, memory, threads, training.

Each section is a function in its own module that returns a plain dict, so tests and later
work can run one section alone; `harness.run_benchmarks` runs them all on one machine and
`report` turns the result into results.json, results.md and the README tables.
"""
