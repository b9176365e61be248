//! The shim as the runtime starts it (`skiff-runtime shim --log … --exit-file
//! … --log-max-size … --log-max-files … -- COMMAND`), with `/bin/sh` for a
//! container: no root needed.

use std::process::Command;

#[test]
fn the_shim_binary_rotates_as_its_flags_say() {
    let dir = tempfile::tempdir().unwrap();
    let (log, exit) = (dir.path().join("app/0.log"), dir.path().join("exit.json"));
    let status = Command::new(env!("CARGO_BIN_EXE_skiff-runtime"))
        .arg("shim")
        .arg("--log")
        .arg(&log)
        .arg("--exit-file")
        .arg(&exit)
        .args(["--log-max-size=500", "--log-max-files=3", "--"])
        .args(["/bin/sh", "-c", "seq 1 100"])
        .status()
        .unwrap();
    assert!(status.success());
    let mut names: Vec<String> = std::fs::read_dir(log.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len(), 3, "{names:?}");
    assert_eq!(names[0], "0.log");
    for n in &names[1..] {
        // 0.log.YYYYMMDD-HHMMSS, maybe -N after it.
        let stamp = n.strip_prefix("0.log.").unwrap();
        let b = stamp.as_bytes();
        assert!(b.len() >= 15 && b[8] == b'-', "{n}");
        assert!(
            b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit),
            "{n}"
        );
    }
    let current = std::fs::read_to_string(&log).unwrap();
    assert!(current.ends_with(" stdout F 100\n"), "{current}");
    for n in &names {
        let len = std::fs::metadata(dir.path().join("app").join(n))
            .unwrap()
            .len();
        assert!(len <= 500, "{n}: {len}");
    }
    let e: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&exit).unwrap()).unwrap();
    assert_eq!(e["reason"].as_str(), Some("Completed"));
    // Fewer than two files is refused, as the kubelet's flag is.
    let refused = Command::new(env!("CARGO_BIN_EXE_skiff-runtime"))
        .args([
            "shim",
            "--log",
            "l",
            "--exit-file",
            "e",
            "--log-max-files=1",
        ])
        .args(["--", "/bin/true"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
}
