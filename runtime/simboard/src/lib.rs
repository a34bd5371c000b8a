//! The simulated board (decision 11): the peripherals a board file declares with `Sim*`
//! backends, live in the supervisor.
#![forbid(unsafe_code)]
