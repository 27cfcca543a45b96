//! Durable disk buffer (and memory buffer) of time-keyed chunks, with fluentd's <buffer> semantics.
