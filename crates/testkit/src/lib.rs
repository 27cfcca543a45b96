//! Test kit of logferry: starts moto_server and other real components for tests.
