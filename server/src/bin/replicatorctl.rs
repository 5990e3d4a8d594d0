//! `replicatorctl`: flags in, [`replicator_server::ctl::run`], exit code out.

use clap::Parser;
use replicator_server::client::exit;
use replicator_server::ctl::{run, Cli};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let code = run(cli, &mut std::io::stdout(), &mut std::io::stderr());
    ExitCode::from(code)
}
