//! `skiff status`: whether the cluster runs, and each program's pid and
//! log. Exit code 0 when it runs, 3 when it does not (as `systemctl status`).

use std::process::ExitCode;

use crate::Result;
use crate::cluster::{Layout, alive};
use crate::programs::programs;

pub fn status(l: &Layout) -> Result<ExitCode> {
    let Some(s) = l.load_settings() else {
        println!("skiff: no cluster in {}", l.data.display());
        return Ok(ExitCode::from(3));
    };
    let Some(pid) = l.running() else {
        println!(
            "skiff: stopped (state in {}; skiff up starts it)",
            l.data.display()
        );
        return Ok(ExitCode::from(3));
    };
    println!(
        "skiff: running (supervisor pid {pid}), API https://127.0.0.1:{}, kubeconfig {}",
        s.port,
        l.kubeconfig().display()
    );
    println!("{:<20} {:>8}  {:<10} LOG", "PROGRAM", "PID", "STATE");
    for p in programs(&s, l) {
        let (pid, state) = match alive(&l.program_pid(&p.name)) {
            Some(pid) => (pid.to_string(), "running"),
            None if p.optional && !crate::bin_dir()?.join(p.binary).exists() => {
                ("-".into(), "not built")
            }
            None => ("-".into(), "down"),
        };
        println!(
            "{:<20} {:>8}  {:<10} {}",
            p.name,
            pid,
            state,
            l.log(&p.name).display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
