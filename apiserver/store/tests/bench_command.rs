//! `skiff-store bench` runs end to end and prints every row for both
//! servers. It checks the shape of the report, never the figures: those are
//! for people to read, not for tests to time.

use std::process::Command;

#[test]
fn bench_prints_every_row_for_both_servers() {
    let out = Command::new(env!("CARGO_BIN_EXE_skiff-store"))
        .args([
            "bench",
            "--rounds",
            "1",
            "--duration",
            "200ms",
            "--samples",
            "50",
        ])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bench failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    for row in [
        "put, 1 clients (ops/s)",
        "put, 16 clients (ops/s)",
        "put, 256 clients (ops/s)",
        "range latency p50",
        "range latency p99",
        "put-to-watch latency p50",
        "put-to-watch latency p99",
        "resident memory after",
        "peak resident memory",
    ] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(row))
            .unwrap_or_else(|| panic!("no row {row:?} in:\n{stdout}"));
        // name, skiff-store, etcd, ratio, winner: both servers were measured.
        let numbers = line[row.len()..]
            .split_whitespace()
            .filter(|w| w.parse::<f64>().is_ok())
            .count();
        assert_eq!(numbers, 2, "both figures in {line:?}");
        assert!(
            line.ends_with("skiff-store") || line.ends_with("etcd"),
            "a winner in {line:?}"
        );
    }
}
