//! This process's CPU time, for the benchmarks' CPU-per-record figures.

/// This process's user + system CPU time, in seconds (from `/proc/self/stat`, in ticks of
/// 1/100 s).
pub(crate) fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}
