//! The per-app worker.
