//! bgpgen's benchmark tools, kept out of the product (the `bgpgen` library and binary): the
//! synthetic cluster of BENCHMARKS.md ([`synth`]) and the floors bgpgen's parsing is measured
//! against ([`floor`]). The `bgpgen-bench` binary runs them; `bench/run` drives it.

pub mod floor;
pub mod synth;
