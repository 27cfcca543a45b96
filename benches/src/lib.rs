//! Benchmarks of logferry; see `benches/`.
