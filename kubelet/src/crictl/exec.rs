//! `crictl exec <id> -- cmd…`: runs a command in a running container with
//! the CRI's `ExecSync`, prints its stdout and stderr, and exits with its
//! code. Interactive exec (`-i`, `-t`) needs the streaming `Exec` and a
//! SPDY/WebSocket client: not here — `kubectl exec -it` does it.

use std::io::Write;
use std::process::ExitCode;

use super::{Cri, CrictlError};
use crate::runtime::Runtime;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Accepted for crictl's sake: every exec here is synchronous.
    #[arg(short, long)]
    pub sync: bool,
    /// Not supported (needs streaming exec): use `kubectl exec -it`.
    #[arg(short, long)]
    pub interactive: bool,
    /// Not supported (needs streaming exec): use `kubectl exec -it`.
    #[arg(short, long)]
    pub tty: bool,
    /// Seconds before the runtime gives up on the command (0: no limit).
    #[arg(long, default_value_t = 0)]
    pub timeout: i64,
    /// The container (id or unique prefix).
    pub container: String,
    /// The command and its arguments (after `--` when they have flags).
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// The process's exit code for the command's (`-1`, no code: 255).
pub fn exit_code(code: i32) -> u8 {
    u8::try_from(code).unwrap_or(255)
}

pub async fn run(
    cri: &Cri,
    args: &Args,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<ExitCode, CrictlError> {
    if args.interactive || args.tty {
        return Err(CrictlError::Usage(
            "exec -i/-t: interactive exec is not supported by this crictl (it uses ExecSync); \
             use `kubectl exec -it`"
                .into(),
        ));
    }
    let id = cri.container_id(&args.container).await?;
    // The runtime bounds the command by --timeout; the call itself waits.
    let unbounded = Cri {
        client: cri.client.clone(),
        endpoint: cri.endpoint.clone(),
        timeout: None,
    };
    let r = unbounded
        .call(
            "ExecSync",
            cri.client.exec_sync(&id, &args.command, args.timeout),
        )
        .await?;
    out.write_all(&r.stdout)?;
    out.flush()?;
    err.write_all(&r.stderr)?;
    Ok(ExitCode::from(exit_code(r.exit_code)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_fit_a_byte() {
        assert_eq!(exit_code(0), 0);
        assert_eq!(exit_code(137), 137);
        assert_eq!(exit_code(-1), 255);
        assert_eq!(exit_code(300), 255);
    }
}
