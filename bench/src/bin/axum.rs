//! `wfs-bench-axum [--listen ADDR]`: baseline (d), an axum server written as axum's WebSocket
//! examples are (see `wfs_bench::axum_server`). Prints `listening on ADDR` once bound.

fn main() -> anyhow::Result<()> {
    wfs_bench::run_baseline("wfs-bench-axum", wfs_bench::axum_server::serve)
}
