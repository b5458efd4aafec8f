//! `wfs-bench-fastws [--listen ADDR]`: baseline (e), the second ceiling, on fastwebsockets
//! (see `wfs_bench::fastws`). Prints `listening on ADDR` once bound.

use anyhow::Context;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut listen = "127.0.0.1:0".to_owned();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => listen = args.next().context("--listen needs an address")?,
            other => {
                anyhow::bail!("unknown argument {other}; usage: wfs-bench-fastws [--listen ADDR]")
            }
        }
    }
    wfs_bench::raise_open_files_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        println!("listening on {}", listener.local_addr()?);
        wfs_bench::fastws::serve(listener)
            .await
            .context("accept failed")
    })
}
