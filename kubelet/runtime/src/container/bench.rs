//! `skiff-runtime bench`: create+start+wait+delete of one bundle, `rounds`
//! times, with this runtime, runc and crun (where installed), each as a
//! process per cycle (`<runtime> run`), printed side by side with the ratio.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn cycle(program: &Path, args: &[&str], bundle: &Path) -> std::io::Result<Duration> {
    let t = Instant::now();
    let status = Command::new(program)
        .args(args)
        .current_dir(bundle)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    if !status.success() {
        return Err(std::io::Error::other(format!(
            "{} {args:?} failed: {status}",
            program.display()
        )));
    }
    Ok(t.elapsed())
}

pub fn run(bundle: &Path, rounds: usize) -> std::io::Result<()> {
    let me = std::env::current_exe()?;
    let bundle = bundle.canonicalize()?;
    let mut rows: Vec<(String, Duration)> = Vec::new();
    let pid = std::process::id();
    let candidates: Vec<(String, std::path::PathBuf, Vec<String>)> = vec![
        (
            "skiff-runtime".into(),
            me,
            vec!["run".into(), "--bundle".into(), ".".into()],
        ),
        (
            "runc".into(),
            "runc".into(),
            vec!["run".into(), "--bundle".into(), ".".into()],
        ),
        (
            "crun".into(),
            "crun".into(),
            vec!["run".into(), "--bundle".into(), ".".into()],
        ),
    ];
    for (name, program, base) in candidates {
        let mut total = Duration::ZERO;
        let mut ok = true;
        for i in 0..rounds {
            let id = format!("skiff-bench-{pid}-{name}-{i}");
            let mut args: Vec<&str> = base.iter().map(String::as_str).collect();
            args.push(&id);
            match cycle(&program, &args, &bundle) {
                Ok(d) => total += d,
                Err(e) => {
                    println!("{name}: not measured ({e})");
                    ok = false;
                    break;
                }
            }
        }
        if ok {
            rows.push((name, total / rounds as u32));
        }
    }
    println!(
        "create+start+wait+delete of {} ({rounds} rounds)",
        bundle.display()
    );
    println!(
        "{:<16} {:>12} {:>16}",
        "runtime", "ms/cycle", "vs skiff-runtime"
    );
    let ours = rows.first().map(|r| r.1.as_secs_f64()).unwrap_or(1.0);
    for (name, d) in &rows {
        println!(
            "{:<16} {:>12.1} {:>15.2}x",
            name,
            d.as_secs_f64() * 1000.0,
            d.as_secs_f64() / ours
        );
    }
    Ok(())
}
