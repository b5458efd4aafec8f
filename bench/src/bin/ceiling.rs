//! `wfs-bench-ceiling [--listen ADDR]`: baseline (a), the minimal tokio-tungstenite server
//! (see `wfs_bench::ceiling`). Prints `listening on ADDR` once bound.

fn main() -> anyhow::Result<()> {
    wfs_bench::run_baseline("wfs-bench-ceiling", wfs_bench::ceiling::serve)
}
