//! Runs `examples/linear_regression.rs` as a test: it trains to a small loss
//! and checks that the run resumed from its checkpoint ends bit for bit where
//! the uninterrupted run ends (it returns an error otherwise).

#[path = "../examples/linear_regression.rs"]
mod linear_regression;

#[test]
fn the_linear_regression_example_converges_and_resumes_exactly() {
    linear_regression::main().unwrap();
}
