//! Embedding examples of logferry: run them with `cargo run -p logferry-examples --example NAME`.
