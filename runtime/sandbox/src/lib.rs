//! Worker spawning and confinement.
