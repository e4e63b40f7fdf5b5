//! Writes an rpath to torch's `lib/` into every binary of this package (tests,
//! benches, the report), so they start without `LD_LIBRARY_PATH`. It also
//! records which Python (the project venv) the tests should run PyTorch with.
use std::path::PathBuf;
use std::process::Command;

fn python() -> PathBuf {
    if let Ok(p) = std::env::var("ADADELTA_PYTHON") {
        return p.into();
    }
    if let Ok(v) = std::env::var("VIRTUAL_ENV") {
        return PathBuf::from(v).join("bin/python");
    }
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("..");
    root.join(".venv/bin/python")
}

fn main() {
    println!("cargo:rerun-if-env-changed=ADADELTA_PYTHON");
    println!("cargo:rerun-if-env-changed=VIRTUAL_ENV");
    let py = python();
    let out = Command::new(&py)
        .args([
            "-c",
            "import os, torch; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))",
        ])
        .output();
    match out {
        Ok(o) if o.status.success() => {
            let lib = String::from_utf8(o.stdout).unwrap().trim().to_string();
            println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
            println!("cargo:rustc-env=ADADELTA_TORCH_LIB={lib}");
        }
        _ => println!(
            "cargo:warning=could not run {} to find torch's lib/; run scripts/setup.sh and source scripts/env.sh",
            py.display()
        ),
    }
    println!("cargo:rustc-env=ADADELTA_PYTHON_BUILD={}", py.display());
}
