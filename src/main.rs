//! The `npusim` binary; everything it does is in [`npusim::run`].
use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::from(npusim::run(std::env::args_os(), &mut std::io::stdout().lock(), &mut std::io::stderr().lock()))
}
