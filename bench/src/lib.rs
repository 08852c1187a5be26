//! Benchmark fixtures for tinyo; see `bench/run.sh`.
