//! Runs `examples/tch_training.rs` as a test: a linear regression whose
//! parameters and gradients live in libtorch (`tch`), stepped by
//! `adadelta::Adadelta` through a `Parameter` adapter, trains to a small loss
//! (the example returns an error otherwise).

#[path = "../examples/tch_training.rs"]
mod tch_training;

#[test]
fn the_tch_training_example_converges() {
    tch_training::main().unwrap();
}
