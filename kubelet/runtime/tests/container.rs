//! The container engine as root, through the `skiff-runtime run` binary on
//! bundles written by `container::spec` over a busybox rootfs: isolation
//! seen from inside, the memory limit (OOMKilled) and the pids limit
//! enforced, exit codes, nothing left behind — and a differential test: the
//! same bundle run by runc gives the same observations.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use skiff_runtime::container::spec::{ContainerSpec, DEFAULT_CAPABILITIES, config_json};

static N: AtomicU32 = AtomicU32::new(0);

/// A bundle dir with a busybox rootfs and the config of `spec` (args given).
struct Bundle {
    dir: tempfile::TempDir,
    cgroup: String,
}

impl Bundle {
    fn new(args: &[&str], tweak: impl FnOnce(&mut ContainerSpec)) -> Bundle {
        let dir = tempfile::Builder::new()
            .prefix("skiff-rt-ctr-")
            .tempdir()
            .unwrap();
        let root = dir.path().join("rootfs");
        for d in ["bin", "proc", "dev", "sys", "etc", "tmp"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
        let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
        for applet in String::from_utf8_lossy(&list.stdout).lines() {
            let _ = std::os::unix::fs::symlink("busybox", root.join("bin").join(applet));
        }
        let n = N.fetch_add(1, Ordering::SeqCst);
        let cgroup = format!("skiff-test-{}-{n}", std::process::id());
        let mut spec = ContainerSpec {
            args: args.iter().map(|s| s.to_string()).collect(),
            env: vec!["GREETING=hello".into()],
            hostname: "skiffbox".into(),
            rootfs: "rootfs".into(),
            cgroups_path: format!("{cgroup}/ctr"),
            ..Default::default()
        };
        tweak(&mut spec);
        std::fs::write(
            dir.path().join("config.json"),
            config_json(&spec).to_string(),
        )
        .unwrap();
        Bundle { dir, cgroup }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn run_with(&self, program: &str) -> Output {
        let id = format!("{}-{program}", self.cgroup);
        let program: PathBuf = if program == "skiff" {
            env!("CARGO_BIN_EXE_skiff-runtime").into()
        } else {
            program.into()
        };
        Command::new(program)
            .args(["run", "--bundle"])
            .arg(self.path())
            .arg(&id)
            .output()
            .unwrap()
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        // runc makes the parent cgroup in every controller; ours removes its own.
        for c in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            let d = c.path().join(&self.cgroup);
            let _ = std::fs::remove_dir(d.join("ctr"));
            let _ = std::fs::remove_dir(d);
        }
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn cap_eff(names: &[&str]) -> String {
    let bit = |n: &str| match n {
        "CAP_CHOWN" => 0,
        "CAP_DAC_OVERRIDE" => 1,
        "CAP_FOWNER" => 3,
        "CAP_FSETID" => 4,
        "CAP_KILL" => 5,
        "CAP_SETGID" => 6,
        "CAP_SETUID" => 7,
        "CAP_SETPCAP" => 8,
        "CAP_NET_BIND_SERVICE" => 10,
        "CAP_NET_RAW" => 13,
        "CAP_SYS_CHROOT" => 18,
        "CAP_MKNOD" => 27,
        "CAP_AUDIT_WRITE" => 29,
        "CAP_SETFCAP" => 31,
        other => panic!("{other}"),
    };
    format!("{:016x}", names.iter().map(|n| 1u64 << bit(n)).sum::<u64>())
}

#[test]
#[ignore = "needs root: namespaces, mounts, cgroups"]
fn isolation_seen_from_inside() {
    let b = Bundle::new(
        &[
            "sh",
            "-c",
            "echo pid=$$; hostname; ls /; grep CapEff /proc/self/status; \
           ps -o comm | tr '\\n' ' '; echo; mount -t tmpfs x /tmp 2>&1 || echo mount-refused; \
           echo $GREETING; exit 7",
        ],
        |_| {},
    );
    let out = b.run_with("skiff");
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(7),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "pid=1", "{text}");
    assert_eq!(lines[1], "skiffbox");
    let listing: Vec<&str> = lines[2..8].to_vec();
    assert_eq!(
        listing,
        ["bin", "dev", "etc", "proc", "sys", "tmp"],
        "no host files"
    );
    assert_eq!(
        lines[8],
        format!("CapEff:\t{}", cap_eff(&DEFAULT_CAPABILITIES)),
        "the default container capabilities"
    );
    // The shell, its pipeline (a forked sh may not have exec'd tr yet) and
    // ps (busybox may run an applet as /proc/self/exe): nothing of the host.s processes.
    let procs: Vec<&str> = lines[9].split_whitespace().collect();
    assert!(
        procs.len() <= 4
            && procs
                .iter()
                .all(|p| ["COMMAND", "sh", "ps", "tr", "exe"].contains(p)),
        "no host processes: {procs:?}"
    );
    assert!(text.contains("mount-refused"), "{text}");
    assert!(text.contains("hello"));
    assert!(
        !Path::new("/sys/fs/cgroup/memory").join(&b.cgroup).exists(),
        "cgroup removed"
    );
}

#[test]
#[ignore = "needs root: namespaces, mounts, cgroups"]
fn memory_limit_ends_in_oom_killed() {
    let b = Bundle::new(
        &[
            "sh",
            "-c",
            "dd if=/dev/zero of=/dev/shm/fill bs=1M count=100",
        ],
        |s| {
            s.memory_limit = Some(32 << 20);
        },
    );
    let out = b.run_with("skiff");
    assert_eq!(
        out.status.code(),
        Some(137),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("OOMKilled"));
}

#[test]
#[ignore = "needs root: namespaces, mounts, cgroups"]
fn pids_limit_bounds_a_fork_storm() {
    let storm = [
        "sh",
        "-c",
        "for i in $(seq 1 40); do sleep 1 & done; wait; echo done",
    ];
    let limited = Bundle::new(&storm, |s| s.pids_limit = Some(12)).run_with("skiff");
    let refused = String::from_utf8_lossy(&limited.stderr);
    assert!(
        refused.contains("can't fork"),
        "pids.max 12 refuses forks: {limited:?}"
    );
    // The control: the same storm without the limit forks all 40.
    let free = Bundle::new(&storm, |_| {}).run_with("skiff");
    assert!(
        !String::from_utf8_lossy(&free.stderr).contains("can't fork"),
        "{free:?}"
    );
    assert_eq!(stdout(&free).trim(), "done");
}

#[test]
#[ignore = "needs root: namespaces, mounts, cgroups, runc"]
fn same_bundle_same_observations_as_runc() {
    let probe = "hostname; id -u; id -g; grep -E '^Cap(Eff|Bnd|Prm)' /proc/self/status; \
                 awk '{print $2, $3, $4}' /proc/self/mounts | sed 's/,size=[0-9k]*//; s/,inode64//' | sort; \
                 env | sort; ls /dev | sort; exit 3";
    let b = Bundle::new(&["sh", "-c", probe], |s| {
        s.uid = 1000;
        s.gid = 1000;
        s.no_new_privileges = true;
        s.memory_limit = Some(64 << 20);
    });
    let ours = b.run_with("skiff");
    let runc = b.run_with("runc");
    assert_eq!(
        runc.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&runc.stderr)
    );
    assert_eq!(ours.status.code(), runc.status.code());
    let (a, r) = (stdout(&ours), stdout(&runc));
    let diff: Vec<String> = a
        .lines()
        .zip(r.lines())
        .filter(|(x, y)| x != y)
        .map(|(x, y)| format!("skiff: {x}\n runc: {y}"))
        .collect();
    assert!(
        diff.is_empty() && a.lines().count() == r.lines().count(),
        "differences:\n{}\n\nskiff:\n{a}\nrunc:\n{r}",
        diff.join("\n")
    );
}
