//! `skiff-runtime bench`: create + start + wait + delete of one bundle,
//! `rounds` times, with this runtime, runc and crun (where installed), each
//! as the separate commands a container manager would run (`create`,
//! `start`, a wait for the process, `delete`), printed side by side with
//! the ratio, the peak memory of one runtime process, and its binary's size.
//!
//! Each runtime's loop runs in a child process (`bench-one`) that is a
//! subreaper: the detached container's init is reparented to it, so it
//! waits for the exit the way a shim would, and its `RUSAGE_CHILDREN`
//! peak RSS is that runtime's alone.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::resource::{UsageWho, getrusage};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use crate::oci::spec::{ContainerConfig, build, write};

type BoxError = Box<dyn std::error::Error>;

/// A bundle whose rootfs is busybox and whose process is `/bin/true`.
pub fn true_bundle(dir: &Path) -> Result<(), BoxError> {
    let bin = dir.join("rootfs/bin");
    std::fs::create_dir_all(&bin)?;
    for d in ["proc", "dev", "sys", "tmp", "etc"] {
        std::fs::create_dir_all(dir.join("rootfs").join(d))?;
    }
    std::fs::copy("/bin/busybox", bin.join("busybox"))?;
    for applet in ["true", "sh"] {
        let _ = std::os::unix::fs::symlink("busybox", bin.join(applet));
    }
    let config = ContainerConfig {
        args: vec!["/bin/true".into()],
        rootfs: "rootfs".into(),
        hostname: "bench".into(),
        // A leaf only: every runtime removes its leaf; runc would leave
        // a parent behind.
        cgroups_path: format!("skiff-bench-{}", std::process::id()),
        ..Default::default()
    };
    write(dir, &build(&config)?)?;
    Ok(())
}

fn status(program: &Path, args: &[&str], root: &Path) -> Result<(), BoxError> {
    // Stderr goes to a file, not a pipe: after `create` the container's
    // init inherits it and keeps it open until `start`, so reading a pipe
    // to its end would wait forever (runc and crun behave the same).
    let log = root.join("bench.stderr");
    let stderr = std::fs::File::create(&log)?;
    let s = Command::new(program)
        .arg("--root")
        .arg(root)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .status()?;
    if !s.success() {
        return Err(format!(
            "{} {args:?}: {s}: {}",
            program.display(),
            std::fs::read_to_string(&log).unwrap_or_default().trim()
        )
        .into());
    }
    Ok(())
}

/// The `bench-one` loop: prints `ms_per_cycle peak_rss_kib`.
pub fn one(runtime: &Path, bundle: &Path, rounds: usize, root: &Path) -> Result<(), BoxError> {
    nix::sys::prctl::set_child_subreaper(true)?;
    let bundle = bundle.to_str().ok_or("bundle path is not UTF-8")?;
    let pid_file = root.join("bench.pid");
    let pid_arg = pid_file.to_str().ok_or("state path is not UTF-8")?;
    let mut total = Duration::ZERO;
    for i in 0..rounds {
        let id = format!("skiff-bench-{}-{i}", std::process::id());
        let t = Instant::now();
        status(
            runtime,
            &["create", "--bundle", bundle, "--pid-file", pid_arg, &id],
            root,
        )?;
        status(runtime, &["start", &id], root)?;
        let pid = super::state::read_pid_file(&pid_file).ok_or("no pid file")?;
        // Reparented to us: ours to reap.
        let _ = waitpid(Pid::from_raw(pid), None);
        status(runtime, &["delete", &id], root)?;
        total += t.elapsed();
    }
    let rss = getrusage(UsageWho::RUSAGE_CHILDREN)?.max_rss();
    println!(
        "{:.2} {rss}",
        total.as_secs_f64() * 1000.0 / rounds.max(1) as f64
    );
    Ok(())
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// Runs the comparison and prints the table.
pub fn main(bundle: Option<&Path>, rounds: usize) -> Result<(), BoxError> {
    let tmp = tempfile::Builder::new().prefix("skiff-bench-").tempdir()?;
    let bundle = match bundle {
        Some(b) => b.canonicalize()?,
        None => {
            let b = tmp.path().join("bundle");
            true_bundle(&b)?;
            b
        }
    };
    let me = std::env::current_exe()?;
    let mut candidates = vec![("skiff-runtime".to_string(), me.clone())];
    for name in ["runc", "crun"] {
        if let Some(p) = which(name) {
            candidates.push((name.into(), p));
        }
    }
    println!(
        "create+start+wait+delete of {} ({rounds} rounds, each step a process)",
        bundle.display()
    );
    println!(
        "{:<14} {:>10} {:>12} {:>14} {:>12}",
        "runtime", "ms/cycle", "vs skiff", "peak RSS KiB", "binary KiB"
    );
    let mut ours = None;
    for (name, program) in candidates {
        let root = tmp.path().join(format!("state-{name}"));
        std::fs::create_dir_all(&root)?;
        let out = Command::new(&me)
            .args(["bench-one", "--runtime"])
            .arg(&program)
            .arg("--bundle")
            .arg(&bundle)
            .args(["--rounds", &rounds.to_string(), "--state-root"])
            .arg(&root)
            .stdin(Stdio::null())
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let mut fields = text.split_whitespace();
        let (Some(ms), Some(rss)) = (
            fields.next().and_then(|f| f.parse::<f64>().ok()),
            fields.next(),
        ) else {
            println!(
                "{name:<14} not measured: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            continue;
        };
        let base = *ours.get_or_insert(ms);
        let size = std::fs::metadata(&program)
            .map(|m| m.len() / 1024)
            .unwrap_or(0);
        println!(
            "{name:<14} {ms:>10.2} {:>11.2}x {rss:>14} {size:>12}",
            ms / base
        );
    }
    Ok(())
}

/// [`main`] on a given bundle (the shared `runtime bench` command).
pub fn run(bundle: &Path, rounds: usize) -> std::io::Result<()> {
    main(Some(bundle), rounds).map_err(|e| std::io::Error::other(e.to_string()))
}
