//! Running the `skiffctl` binary the tests built.

use std::process::{Command, Stdio};

use skiff_tests::{Run, TestCluster};

/// Runs `skiffctl` with the cluster's kubeconfig (blocking).
#[allow(dead_code)]
pub fn skiffctl(cluster: &TestCluster, args: &[&str], input: Option<&str>) -> Run {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_skiffctl"))
        .arg("--kubeconfig")
        .arg(&cluster.kubeconfig)
        .args(args)
        .env_remove("KUBECONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("skiffctl runs");
    let mut stdin = child.stdin.take().unwrap();
    if let Some(input) = input {
        stdin.write_all(input.as_bytes()).unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
