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
