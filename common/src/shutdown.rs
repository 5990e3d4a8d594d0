//! Process shutdown on SIGTERM or SIGINT, shared by the binaries.

use std::future::Future;
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

/// Waits for the first SIGTERM or Ctrl-C (call inside a runtime; the
/// SIGTERM handler is installed before the future is returned).
pub fn on_signal() -> std::io::Result<impl Future<Output = ()>> {
    let mut term = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    })
}

/// Runs `main` to completion on a new multi-threaded runtime, handing it a
/// token cancelled on the first signal ([`on_signal`]): the body of every
/// binary's `main`. The signal wait runs beside `main` in the same task (no
/// detached task), and stops when `main` returns.
pub fn block_on<F, Fut>(main: F) -> std::io::Result<Fut::Output>
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: Future,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let token = CancellationToken::new();
        let signalled = on_signal()?;
        let main = main(token.clone());
        tokio::pin!(main);
        tokio::select! {
            out = &mut main => return Ok(out),
            _ = signalled => {
                tracing::info!("stopping");
                token.cancel();
            }
        }
        Ok(main.await)
    })
}
