//! `skiff logs <program> [-f]`: a program's log from the data dir.

use std::io::{Read, Seek, SeekFrom, Write};
use std::process::ExitCode;
use std::time::Duration;

use crate::cluster::Layout;
use crate::{Error, Result};

pub fn logs(l: &Layout, program: &str, follow: bool) -> Result<ExitCode> {
    // The cluster's own programs (`kubelet-node2` with --nodes), and the supervisor.
    let mut names: Vec<String> = match l.load_settings() {
        Some(s) => crate::programs::programs(&s, l)
            .into_iter()
            .map(|p| p.name)
            .collect(),
        None => Vec::new(),
    };
    names.push("skiff".into());
    if !names.iter().any(|n| n == program) {
        return Err(Error::Failed(format!(
            "no program {program:?}: one of {}",
            names.join(", ")
        )));
    }
    let path = l.log(program);
    let mut file = std::fs::File::open(&path).map_err(Error::io(path.display().to_string()))?;
    let mut out = std::io::stdout().lock();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        file.read_to_end(&mut buf)
            .map_err(Error::io(path.display().to_string()))?;
        if out.write_all(&buf).and_then(|_| out.flush()).is_err() {
            // The reader went away (`skiff logs kubelet | head`).
            return Ok(ExitCode::SUCCESS);
        }
        if !follow {
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(Duration::from_millis(250));
        // A log that was truncated starts over.
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let pos = file.stream_position().unwrap_or(0);
        if len < pos {
            file.seek(SeekFrom::Start(0))
                .map_err(Error::io(path.display().to_string()))?;
        }
    }
}
