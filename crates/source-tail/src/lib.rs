//! File tailing with glob paths, crash-safe checkpoints and rotation handling.
