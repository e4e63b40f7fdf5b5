//! What a benchmark ran on, printed above every benchmark table of this
//! workspace: the CPU (model name, vendor, family/model/stepping, logical
//! CPUs, whether under a hypervisor), the kernel path `adadelta` runs on it
//! and the oneMKL square root reproduce-libtorch numerics emulate there; and
//! the load average (the machine may be shared).
//!
//! Shared by source (`#[path = ...] mod machine;`) by `fast/benches/kernel.rs`
//! and difftest's `kernel` and `checkpoint` benches, so that there is one
//! definition.

use adadelta::kernel::{Executor, LibtorchSqrt};

/// The first value of `key` in `/proc/cpuinfo` (`key : value` lines).
fn cpuinfo_field<'a>(cpuinfo: &'a str, key: &str) -> Option<&'a str> {
    cpuinfo.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == key).then(|| v.trim())
    })
}

/// One line naming the machine, e.g. `CPU: Intel(R) Xeon(R) Processor
/// (GenuineIntel, family 6 model 207 stepping 2), 2 logical CPUs, under a
/// hypervisor; kernel path avx512; reproduce-libtorch sqrt:
/// mkl_vml_kernel_sSqrt_Z0HAynn`. Fields that cannot be read (not Linux, or
/// not x86) are `unknown`.
pub fn describe() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |k: &str| cpuinfo_field(&cpuinfo, k).unwrap_or("unknown");
    let logical = match cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count()
    {
        0 => std::thread::available_parallelism().map_or(0, |n| n.get()),
        n => n,
    };
    let hypervisor = cpuinfo_field(&cpuinfo, "flags")
        .is_some_and(|f| f.split_whitespace().any(|x| x == "hypervisor"));
    let path = match Executor::default().resolved_isa() {
        Ok(p) => p.name().to_string(),
        Err(e) => format!("none ({e})"),
    };
    let sqrt = match LibtorchSqrt::detect() {
        Ok(k) => k.mkl_kernel().to_string(),
        Err(e) => format!("none ({e})"),
    };
    format!(
        "CPU: {} ({}, family {} model {} stepping {}), {logical} logical CPUs{}; \
         kernel path {path}; reproduce-libtorch sqrt: {sqrt}",
        field("model name"),
        field("vendor_id"),
        field("cpu family"),
        field("model"),
        field("stepping"),
        if hypervisor {
            ", under a hypervisor"
        } else {
            ""
        },
    )
}

/// The 1, 5 and 15 minute load averages, or `unknown`.
pub fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}
