//! `skiffctl`: parse the command line, run it, exit as kubectl would.

use clap::Parser;

#[tokio::main]
async fn main() {
    // A shell asking for completions (`COMPLETE=bash skiffctl -- …`) is
    // answered here, and the process ends.
    skiffctl::cmd::completion::answer_if_asked();
    let cli = match skiffctl::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                _ => 1,
            };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    std::process::exit(skiffctl::main(cli).await);
}
