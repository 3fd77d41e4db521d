//! Cross-crate integration tests live in `tests/tests/`; real-client compatibility tests join
//! them with the server. This library is intentionally empty.
