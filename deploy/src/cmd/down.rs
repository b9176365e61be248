//! `skiff down`: stop the programs; the data dir keeps the cluster (and
//! the pods' containers keep running, as on a node whose kubelet stops, to
//! be adopted by the next `up`; `skiff reset` ends them).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::cluster::Layout;
use crate::{Error, Result};

pub fn down(l: &Layout) -> Result<ExitCode> {
    let Some(pid) = l.running() else {
        println!("skiff: not running (state in {})", l.data.display());
        return Ok(ExitCode::SUCCESS);
    };
    stop_supervisor(l, pid)?;
    println!(
        "skiff: stopped; the cluster's state stays in {}",
        l.data.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// SIGTERM to the supervisor, which stops the programs in order; waits.
pub fn stop_supervisor(l: &Layout, pid: i32) -> Result<()> {
    let pid = nix::unistd::Pid::from_raw(pid);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)
        .map_err(|e| Error::Failed(format!("cannot signal the supervisor (pid {pid}): {e}")))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while l.running().is_some() {
        if Instant::now() > deadline {
            return Err(Error::Failed(format!(
                "the supervisor (pid {pid}) did not stop within 60 s; see {}",
                l.log("skiff").display()
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}
