"""Helpers shared by the tests and the benchmarks (neither imports the other): repo paths, free ports,
peak memory, uploads to a live app, a random-weights detector, and the queue held full on purpose."""
