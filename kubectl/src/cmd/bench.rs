//! `skiffctl bench`: wall time of `skiffctl get pods` beside `kubectl get
//! pods` (kubectl's discovery cache warmed by a first run), and of applying
//! 100 ConfigMaps server-side with each, in a scratch namespace that is
//! deleted afterwards. Figures only; nothing is asserted.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Result, usage};
use crate::kubeconfig::ConfigFlags;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Runs of each `get pods`.
    #[arg(long, default_value_t = 10)]
    pub runs: usize,
    /// The kubectl to compare with.
    #[arg(long, default_value = "kubectl")]
    pub kubectl: String,
    /// Skip the `apply -f` of 100 objects.
    #[arg(long)]
    pub no_apply: bool,
}

fn base_args(flags: &ConfigFlags) -> Vec<String> {
    let mut args = Vec::new();
    if let Some(k) = &flags.kubeconfig {
        args.push("--kubeconfig".to_string());
        args.push(k.display().to_string());
    }
    if let Some(c) = &flags.context {
        args.push("--context".to_string());
        args.push(c.clone());
    }
    args
}

fn time(program: &PathBuf, args: &[String], stdin: Option<&PathBuf>) -> Result<Duration> {
    let start = Instant::now();
    let mut cmd = Command::new(program);
    cmd.args(args).stdout(Stdio::null()).stderr(Stdio::piped());
    if let Some(f) = stdin {
        cmd.stdin(std::fs::File::open(f).map_err(|e| usage(e.to_string()))?);
    }
    let out = cmd
        .output()
        .map_err(|e| usage(format!("bench: running {}: {e}", program.display())))?;
    let took = start.elapsed();
    if !out.status.success() {
        return Err(usage(format!(
            "bench: {} {} failed: {}",
            program.display(),
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(took)
}

/// Median, p90 and minimum of `samples` (sorted in place).
pub fn summary(samples: &mut [Duration]) -> (Duration, Duration, Duration) {
    samples.sort();
    let n = samples.len();
    if n == 0 {
        return Default::default();
    }
    (samples[n / 2], samples[(n * 9 / 10).min(n - 1)], samples[0])
}

fn ms(d: Duration) -> String {
    format!("{:.1}ms", d.as_secs_f64() * 1000.0)
}

pub fn run(flags: &ConfigFlags, args: Args) -> Result<()> {
    let me = std::env::current_exe().map_err(|e| usage(e.to_string()))?;
    let kubectl = PathBuf::from(&args.kubectl);
    let base = base_args(flags);
    let get: Vec<String> = base
        .iter()
        .cloned()
        .chain(["get".into(), "pods".into()])
        .collect();
    // Warm kubectl's discovery cache (skiffctl keeps none).
    time(&kubectl, &get, None)?;
    let mut rows = vec![vec![
        "COMMAND".to_string(),
        "RUNS".into(),
        "MEDIAN".into(),
        "P90".into(),
        "MIN".into(),
    ]];
    for (label, program) in [("skiffctl get pods", &me), ("kubectl get pods", &kubectl)] {
        let mut samples = Vec::new();
        for _ in 0..args.runs {
            samples.push(time(program, &get, None)?);
        }
        let (median, p90, min) = summary(&mut samples);
        rows.push(vec![
            label.into(),
            args.runs.to_string(),
            ms(median),
            ms(p90),
            ms(min),
        ]);
    }
    if !args.no_apply {
        let dir = std::env::temp_dir().join(format!("skiffctl-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| usage(e.to_string()))?;
        let ns = format!("skiffctl-bench-{}", std::process::id());
        let mut manifest = format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n");
        for i in 0..100 {
            manifest.push_str(&format!(
                "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bench-{i}\n  namespace: {ns}\ndata:\n  i: \"{i}\"\n"
            ));
        }
        let file = dir.join("objects.yaml");
        std::fs::write(&file, &manifest).map_err(|e| usage(e.to_string()))?;
        let f = file.display().to_string();
        let ours: Vec<String> = base
            .iter()
            .cloned()
            .chain(["apply".into(), "-f".into(), f.clone()])
            .collect();
        let theirs: Vec<String> = base
            .iter()
            .cloned()
            .chain([
                "apply".into(),
                "--server-side".into(),
                "--force-conflicts".into(),
                "-f".into(),
                f,
            ])
            .collect();
        let a = time(&me, &ours, None);
        let b = time(&kubectl, &theirs, None);
        let del: Vec<String> = base
            .iter()
            .cloned()
            .chain([
                "delete".into(),
                "namespace".into(),
                ns.clone(),
                "--wait=false".into(),
            ])
            .collect();
        let _ = time(&me, &del, None);
        let _ = std::fs::remove_dir_all(&dir);
        rows.push(vec![
            "skiffctl apply -f (101 objects)".into(),
            "1".into(),
            ms(a?),
            "-".into(),
            "-".into(),
        ]);
        rows.push(vec![
            "kubectl apply --server-side -f (101 objects)".into(),
            "1".into(),
            ms(b?),
            "-".into(),
            "-".into(),
        ]);
    }
    print!("{}", crate::print::tabwriter::render(&rows));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_picks_median_p90_and_min() {
        let mut s: Vec<Duration> = (1..=10).rev().map(Duration::from_millis).collect();
        assert_eq!(
            summary(&mut s),
            (
                Duration::from_millis(6),
                Duration::from_millis(10),
                Duration::from_millis(1)
            )
        );
    }
}
