"""Plain-Python references the tests (and the benchmarks) hold the compiled dataplane against."""
