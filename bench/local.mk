# bench/local.mk - benchmarks (run by hand or by scripts/bench; never timed in tests).
EXTRA_DIST += bench
