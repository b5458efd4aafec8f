//! `wfs-bench-fastws [--listen ADDR]`: baseline (e), the second ceiling, on fastwebsockets
//! (see `wfs_bench::fastws`). Prints `listening on ADDR` once bound.

fn main() -> anyhow::Result<()> {
    wfs_bench::run_baseline("wfs-bench-fastws", wfs_bench::fastws::serve)
}
