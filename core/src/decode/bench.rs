//! Micro-benchmark.
