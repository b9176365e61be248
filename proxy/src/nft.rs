//! `nft` behind a trait: [`RealNft`] feeds a ruleset to `nft -f -` (one
//! transaction: all of it or nothing); [`RecordingNft`] keeps what it was
//! given, for tests without root.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Mutex;

#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("run nft: {0}")]
    Spawn(std::io::Error),
    #[error("nft refused the ruleset: {0}")]
    Refused(String),
}

pub trait Nft: Send + Sync + 'static {
    fn apply(&self, ruleset: &str) -> Result<(), NftError>;
}

#[derive(Debug, Default)]
pub struct RealNft;

impl Nft for RealNft {
    fn apply(&self, ruleset: &str) -> Result<(), NftError> {
        feed(&["nft", "-f", "-"], ruleset)
    }
}

/// Runs `argv` (an `nft -f -`, perhaps inside `ip netns exec`) with
/// `ruleset` on its standard input; its stderr when it refuses.
pub fn feed(argv: &[&str], ruleset: &str) -> Result<(), NftError> {
    let (program, args) = argv.split_first().expect("a program");
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(NftError::Spawn)?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(ruleset.as_bytes())
            .map_err(NftError::Spawn)?;
    }
    let out = child.wait_with_output().map_err(NftError::Spawn)?;
    if !out.status.success() {
        return Err(NftError::Refused(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(())
}

/// Records every ruleset; never fails.
#[derive(Debug, Default)]
pub struct RecordingNft {
    pub applied: Mutex<Vec<String>>,
}

impl Nft for RecordingNft {
    fn apply(&self, ruleset: &str) -> Result<(), NftError> {
        self.applied.lock().unwrap().push(ruleset.to_string());
        Ok(())
    }
}
