//! Runs `examples/linear_regression.rs` as a test: it trains to a small loss
//! and checks that the run resumed from its checkpoint ends bit for bit where
//! the uninterrupted run ends (it returns an error otherwise).

#[path = "../examples/linear_regression.rs"]
mod linear_regression;

#[test]
fn the_linear_regression_example_converges_and_resumes_exactly() {
    linear_regression::main().unwrap();
}

#[path = "../examples/model_struct.rs"]
mod model_struct;

#[test]
fn the_model_struct_example_trains_lent_layers_of_several_types_and_resumes_exactly() {
    model_struct::main().unwrap();
}
