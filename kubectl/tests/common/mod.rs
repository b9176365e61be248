//! Running the `skiffctl` binary the tests built.

use std::process::Command;

use skiff_tests::{Run, TestCluster};

/// Runs `skiffctl` with the cluster's kubeconfig (blocking).
#[allow(dead_code)]
pub fn skiffctl(cluster: &TestCluster, args: &[&str], input: Option<&str>) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_skiffctl"));
    cmd.arg("--kubeconfig")
        .arg(&cluster.kubeconfig)
        .args(args)
        .env_remove("KUBECONFIG");
    Run::of(cmd, input)
}

/// A skiffctl that keeps running (`-w`): the child and the lines it has
/// printed so far, gathered as they come.
#[allow(dead_code)]
pub struct Following {
    pub child: tokio::process::Child,
    pub lines: std::sync::Arc<tokio::sync::Mutex<Vec<String>>>,
    pub reader: tokio::task::JoinHandle<()>,
}

/// Starts `skiffctl --kubeconfig <cluster's> ARGS` and follows its stdout.
#[allow(dead_code)]
pub fn follow(cluster: &TestCluster, args: &[&str]) -> Following {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_skiffctl"))
        .arg("--kubeconfig")
        .arg(&cluster.kubeconfig)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run skiffctl");
    let stdout = child.stdout.take().expect("stdout");
    let lines = std::sync::Arc::new(tokio::sync::Mutex::new(Vec::<String>::new()));
    let reader = {
        let lines = lines.clone();
        tokio::spawn(async move {
            use tokio::io::AsyncBufReadExt;
            let mut r = tokio::io::BufReader::new(stdout).lines();
            while let Ok(Some(l)) = r.next_line().await {
                lines.lock().await.push(l);
            }
        })
    };
    Following {
        child,
        lines,
        reader,
    }
}
