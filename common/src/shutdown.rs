//! Process shutdown on SIGTERM or SIGINT, shared by the binaries.

use tokio_util::sync::CancellationToken;

/// A token cancelled on the first SIGTERM or Ctrl-C (call inside a runtime).
pub fn on_signal() -> std::io::Result<CancellationToken> {
    let token = CancellationToken::new();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let cancel = token.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        tracing::info!("stopping");
        cancel.cancel();
    });
    Ok(token)
}

/// Runs `main` to completion on a new multi-threaded runtime, handing it a
/// token that [`on_signal`] cancels: the body of every binary's `main`.
pub fn block_on<F, Fut>(main: F) -> std::io::Result<Fut::Output>
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: std::future::Future,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move { Ok(main(on_signal()?).await) })
}
