//! The container engine as root, through the `skiff-runtime` binary (runc's
//! commands) on bundles written by `oci::spec` over a busybox rootfs:
//! isolation seen from inside, capabilities and users as configured, the
//! memory limit (OOMKilled) and the pids limit enforced, exit codes, the
//! create/start/state/kill/delete lifecycle, read-only root and binds, the
//! sandbox's namespaces joined — and a differential test: the same bundle
//! run by runc gives the same observations from the same probe.
//!
//! Everything made is removed by drop guards, even on failure: containers
//! (delete --force, through the runtime that made them), cgroups (under a
//! per-run `skiff-test-<pid>-<n>` prefix), state roots and bundles.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use skiff_runtime::linux::cgroups::v1::hierarchies;
use skiff_runtime::oci::spec::{BindMount, ContainerConfig, DEFAULT_CAPABILITIES, build, write};

static N: AtomicU32 = AtomicU32::new(0);
const SKIFF: &str = env!("CARGO_BIN_EXE_skiff-runtime");

/// A bundle (busybox rootfs + config), a state root per runtime, and the
/// cgroup prefix its containers use; all removed on drop.
struct Bundle {
    dir: tempfile::TempDir,
    prefix: String,
    /// (runtime, id) of every container made, deleted on drop.
    made: std::cell::RefCell<Vec<(String, String)>>,
}

fn busybox_rootfs(root: &Path) {
    for d in ["bin", "proc", "dev", "sys", "etc", "tmp"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        // `busybox` itself is in the list: the copy must stay.
        let _ = std::os::unix::fs::symlink("busybox", root.join("bin").join(applet));
    }
}

impl Bundle {
    fn new(args: &[&str], tweak: impl FnOnce(&mut ContainerConfig)) -> Bundle {
        let dir = tempfile::Builder::new()
            .prefix("skiff-rt-ctr-")
            .tempdir()
            .unwrap();
        busybox_rootfs(&dir.path().join("rootfs"));
        let n = N.fetch_add(1, Ordering::SeqCst);
        let prefix = format!("skiff-test-{}-{n}", std::process::id());
        let mut config = ContainerConfig {
            args: args.iter().map(|s| s.to_string()).collect(),
            env: vec!["GREETING=hello".into()],
            hostname: "skiffbox".into(),
            rootfs: "rootfs".into(),
            cgroups_path: format!("{prefix}/ctr"),
            ..Default::default()
        };
        tweak(&mut config);
        write(dir.path(), &build(&config).unwrap()).unwrap();
        Bundle {
            dir,
            prefix,
            made: Default::default(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn root(&self, runtime: &str) -> PathBuf {
        self.dir.path().join(format!("state-{runtime}"))
    }

    fn program(runtime: &str) -> &str {
        if runtime == "skiff" { SKIFF } else { runtime }
    }

    /// `runtime --root <its root> args…`
    fn cmd(&self, runtime: &str, args: &[&str]) -> Output {
        Command::new(Self::program(runtime))
            .arg("--root")
            .arg(self.root(runtime))
            .args(args)
            .output()
            .unwrap()
    }

    fn id(&self, runtime: &str) -> String {
        format!("{}-{runtime}", self.prefix)
    }

    /// `run` the bundle to its end.
    fn run_with(&self, runtime: &str) -> Output {
        let id = self.id(runtime);
        self.made.borrow_mut().push((runtime.into(), id.clone()));
        let bundle = self.path().to_str().unwrap();
        self.cmd(runtime, &["run", "--bundle", bundle, &id])
    }

    /// The container's cgroup directory in the v1 `controller` hierarchy.
    fn cgroup_dir(&self, controller: &str) -> PathBuf {
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        let (name, path) = hierarchies(Path::new("/sys/fs/cgroup"), &own)
            .into_iter()
            .find(|(n, _)| n.split(',').any(|c| c == controller))
            .unwrap();
        Path::new("/sys/fs/cgroup")
            .join(name)
            .join(path.trim_start_matches('/'))
            .join(&self.prefix)
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        for (runtime, id) in self.made.borrow().iter() {
            let _ = self.cmd(runtime, &["delete", "--force", id]);
        }
        // What a runtime left (runc keeps the parent cgroup it made).
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        for (name, path) in hierarchies(Path::new("/sys/fs/cgroup"), &own) {
            let d = Path::new("/sys/fs/cgroup")
                .join(name)
                .join(path.trim_start_matches('/'))
                .join(&self.prefix);
            let _ = std::fs::remove_dir(d.join("ctr"));
            let _ = std::fs::remove_dir(d);
        }
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn cap_mask(names: &[&str]) -> String {
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
        "CAP_NET_ADMIN" => 12,
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
             echo $GREETING; cat /proc/kcore >/dev/null 2>&1 && echo kcore-readable; \
             echo x > /proc/sys/kernel/hostname 2>/dev/null || echo proc-sys-ro; exit 7",
        ],
        |_| {},
    );
    let out = b.run_with("skiff");
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(7), "{text} {}", stderr(&out));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "pid=1", "{text}");
    assert_eq!(lines[1], "skiffbox");
    assert_eq!(
        lines[2..8],
        ["bin", "dev", "etc", "proc", "sys", "tmp"],
        "no host files"
    );
    assert_eq!(
        lines[8],
        format!("CapEff:\t{}", cap_mask(&DEFAULT_CAPABILITIES)),
        "the default container capabilities"
    );
    // The shell, its pipeline (a forked sh may not have exec'd tr yet), ps.
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
    assert!(!text.contains("kcore-readable"));
    assert!(text.contains("proc-sys-ro"), "{text}");
    assert!(
        !b.cgroup_dir("memory").join("ctr").exists(),
        "cgroup removed"
    );
    assert_eq!(
        std::fs::read_dir(b.root("skiff")).unwrap().count(),
        0,
        "state removed"
    );
}

#[test]
#[ignore = "needs root: namespaces, mounts, cgroups"]
fn user_and_capabilities_as_configured() {
    let mut want: Vec<&str> = DEFAULT_CAPABILITIES
        .iter()
        .copied()
        .filter(|c| *c != "CAP_KILL" && *c != "CAP_MKNOD")
        .collect();
    want.push("CAP_NET_ADMIN");
    let mask = cap_mask(&want);
    let probe = [
        "sh",
        "-c",
        "id -u; id -g; id -G; grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status",
    ];
    let caps = |c: &mut ContainerConfig| {
        c.add_capabilities = vec!["NET_ADMIN".into()];
        c.drop_capabilities = vec!["CAP_KILL".into(), "MKNOD".into()];
    };
    // Root: the configured set is effective.
    let b = Bundle::new(&probe, caps);
    let out = b.run_with("skiff");
    assert_eq!(
        stdout(&out),
        format!("0\n0\n0\nCapEff:\t{mask}\nCapBnd:\t{mask}\nNoNewPrivs:\t0\n"),
        "{}",
        stderr(&out)
    );
    // Another user: groups as asked; exec leaves a non-root process without
    // file capabilities nothing effective (as under runc), the bounding set
    // stays as configured.
    let b = Bundle::new(&probe, |c| {
        caps(c);
        c.uid = 1000;
        c.gid = 1001;
        c.additional_gids = vec![20, 30];
        c.no_new_privileges = true;
    });
    let out = b.run_with("skiff");
    assert_eq!(
        stdout(&out),
        format!(
            "1000\n1001\n1001 20 30\nCapEff:\t{}\nCapBnd:\t{mask}\nNoNewPrivs:\t1\n",
            "0".repeat(16)
        ),
        "{}",
        stderr(&out)
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
        |c| c.memory_limit = Some(32 << 20),
    );
    let limit = b.cgroup_dir("memory");
    let out = b.run_with("skiff");
    assert_eq!(out.status.code(), Some(137), "{}", stderr(&out));
    assert!(stderr(&out).contains("OOMKilled"), "{}", stderr(&out));
    assert!(!limit.join("ctr").exists());
}

#[test]
#[ignore = "needs root: namespaces, mounts, cgroups"]
fn pids_limit_bounds_a_fork_storm() {
    let storm = [
        "sh",
        "-c",
        "for i in $(seq 1 40); do sleep 1 & done; wait; echo done",
    ];
    let limited = Bundle::new(&storm, |c| c.pids_limit = Some(12));
    let out = limited.run_with("skiff");
    assert!(
        stderr(&out).contains("can't fork"),
        "pids.max 12 refuses forks: {out:?}"
    );
    // The control: the same storm without the limit forks all 40.
    let free = Bundle::new(&storm, |_| {});
    let out = free.run_with("skiff");
    assert!(!stderr(&out).contains("can't fork"), "{out:?}");
    assert_eq!(stdout(&out).trim(), "done");
}

#[test]
#[ignore = "needs root: namespaces, mounts, cgroups"]
fn create_waits_for_start_then_state_kill_delete() {
    let host = tempfile::tempdir().unwrap();
    let shared = host.path().to_str().unwrap().to_string();
    let b = Bundle::new(
        &[
            "sh",
            "-c",
            "echo started > /shared/mark; trap 'echo term > /shared/mark; exit 0' TERM; \
             while true; do sleep 0.05; done",
        ],
        |c| {
            c.mounts.push(BindMount {
                source: shared.clone(),
                destination: "/shared".into(),
                readonly: false,
            })
        },
    );
    let id = b.id("skiff");
    b.made.borrow_mut().push(("skiff".into(), id.clone()));
    let pid_file = b.path().join("pid");
    let bundle = b.path().to_str().unwrap();
    // The container inherits create's stdio (runc's pass-through mode): a
    // pipe would stay open as long as it runs, so a file it is.
    let log = std::fs::File::create(b.path().join("create.log")).unwrap();
    let created = Command::new(SKIFF)
        .arg("--root")
        .arg(b.root("skiff"))
        .args([
            "create",
            "--bundle",
            bundle,
            "--pid-file",
            pid_file.to_str().unwrap(),
            &id,
        ])
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .status()
        .unwrap();
    assert!(
        created.success(),
        "{}",
        std::fs::read_to_string(b.path().join("create.log")).unwrap()
    );
    let state = |b: &Bundle| -> serde_json::Value {
        let o = b.cmd("skiff", &["state", &id]);
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let s = state(&b);
    assert_eq!(s["status"], "created");
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    assert_eq!(s["pid"].to_string(), pid);
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert!(
        !host.path().join("mark").exists(),
        "nothing runs before start"
    );
    assert!(b.cgroup_dir("pids").join("ctr/cgroup.procs").exists());
    assert_eq!(
        std::fs::read_to_string(b.cgroup_dir("pids").join("ctr/cgroup.procs")).unwrap(),
        format!("{pid}\n"),
        "in its cgroup before it runs"
    );

    assert!(b.cmd("skiff", &["start", &id]).status.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !host.path().join("mark").exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(
        std::fs::read_to_string(host.path().join("mark")).unwrap(),
        "started\n"
    );
    assert_eq!(state(&b)["status"], "running");
    let out = b.cmd("skiff", &["delete", &id]);
    assert!(!out.status.success(), "a running container needs --force");

    assert!(b.cmd("skiff", &["kill", &id, "TERM"]).status.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while state(&b)["status"] != "stopped" && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(state(&b)["status"], "stopped");
    assert_eq!(
        std::fs::read_to_string(host.path().join("mark")).unwrap(),
        "term\n"
    );
    let out = b.cmd("skiff", &["delete", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!b.cgroup_dir("pids").join("ctr").exists());
    assert!(!b.cmd("skiff", &["state", &id]).status.success(), "gone");
}

#[test]
#[ignore = "needs root: namespaces, mounts, cgroups"]
fn read_only_root_and_binds() {
    let host = tempfile::tempdir().unwrap();
    std::fs::create_dir(host.path().join("ro")).unwrap();
    std::fs::create_dir(host.path().join("rw")).unwrap();
    let (ro, rw) = (host.path().join("ro"), host.path().join("rw"));
    let b = Bundle::new(
        &[
            "sh",
            "-c",
            "touch /x 2>/dev/null || echo root-ro; touch /data/ro/x 2>/dev/null || echo bind-ro; \
             echo hi > /data/rw/x && echo bind-rw; echo y > /dev/shm/y && echo shm-rw",
        ],
        |c| {
            c.readonly_rootfs = true;
            c.mounts = vec![
                BindMount {
                    source: ro.display().to_string(),
                    destination: "/data/ro".into(),
                    readonly: true,
                },
                BindMount {
                    source: rw.display().to_string(),
                    destination: "/data/rw".into(),
                    readonly: false,
                },
            ];
        },
    );
    // The destinations must exist in a read-only image: make them first.
    std::fs::create_dir_all(b.path().join("rootfs/data/ro")).unwrap();
    std::fs::create_dir_all(b.path().join("rootfs/data/rw")).unwrap();
    let out = b.run_with("skiff");
    assert_eq!(
        stdout(&out),
        "root-ro\nbind-ro\nbind-rw\nshm-rw\n",
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_to_string(rw.join("x")).unwrap(), "hi\n");
    assert!(!b.path().join("rootfs/x").exists());
}

/// A sandbox's namespaces, pinned by bind mounts (`unshare --net=FILE`),
/// unmounted on drop.
struct Pinned(tempfile::TempDir);

impl Drop for Pinned {
    fn drop(&mut self) {
        for ns in ["net", "uts", "ipc"] {
            let _ = nix::mount::umount2(&self.0.path().join(ns), nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

#[test]
#[ignore = "needs root: namespaces, mounts, cgroups"]
fn joins_the_sandbox_namespaces() {
    let pinned = Pinned(tempfile::tempdir().unwrap());
    let p = |ns: &str| pinned.0.path().join(ns).display().to_string();
    for ns in ["net", "uts", "ipc"] {
        std::fs::write(pinned.0.path().join(ns), "").unwrap();
    }
    let made = Command::new("unshare")
        .arg(format!("--net={}", p("net")))
        .arg(format!("--uts={}", p("uts")))
        .arg(format!("--ipc={}", p("ipc")))
        .args(["hostname", "pod-host"])
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", stderr(&made));
    let b = Bundle::new(
        &[
            "sh",
            "-c",
            "hostname; cat /proc/net/dev | tail -n +3 | cut -d: -f1",
        ],
        |c| {
            c.join = vec![
                ("network".into(), p("net")),
                ("uts".into(), p("uts")),
                ("ipc".into(), p("ipc")),
            ];
        },
    );
    let ours = b.run_with("skiff");
    assert_eq!(
        stdout(&ours).split_whitespace().collect::<Vec<_>>(),
        ["pod-host", "lo"],
        "{}",
        stderr(&ours)
    );
    let theirs = b.run_with("runc");
    assert_eq!(stdout(&ours), stdout(&theirs), "{}", stderr(&theirs));
}

#[test]
#[ignore = "needs root: namespaces, mounts, cgroups, runc"]
fn same_bundle_same_observations_as_runc() {
    let probe = "hostname; id -u; id -g; id -G; grep -E '^(Cap|NoNewPrivs)' /proc/self/status; \
                 awk '{print $2, $3, $4}' /proc/self/mounts | sed 's/,size=[0-9k]*//; s/,inode64//' | sort; \
                 env | sort; ls -l /dev | awk '{print $1, $5, $6, $NF}'; ls /sys/fs/cgroup; \
                 cd /sys/fs/cgroup; cat memory/memory.limit_in_bytes pids/pids.max cpu/cpu.shares \
                 cpu/cpu.cfs_quota_us cpu/cpu.cfs_period_us; cat /proc/self/cgroup; \
                 ulimit -n; umask; pwd; exit 3";
    let b = Bundle::new(&["sh", "-c", probe], |c| {
        c.uid = 1000;
        c.gid = 1000;
        c.additional_gids = vec![10];
        c.no_new_privileges = true;
        c.memory_limit = Some(64 << 20);
        c.pids_limit = Some(50);
        c.cpu_shares = Some(512);
        c.cpu_quota = Some(50_000);
        c.cwd = "/tmp".into();
    });
    let runc = b.run_with("runc");
    let ours = b.run_with("skiff");
    assert_eq!(runc.status.code(), Some(3), "{}", stderr(&runc));
    assert_eq!(ours.status.code(), runc.status.code(), "{}", stderr(&ours));
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
    assert!(a.contains("67108864\n50\n512\n50000\n100000\n"), "{a}");
}

/// Host ID base of the user namespace tests: the 8th block of 65536.
const USERNS_BASE: u32 = 65536 * 8;

/// What the user namespace tests look at from inside.
const USERNS_PROBE: &str = "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map; hostname; \
     stat -c '%u:%g %n' / /bin/busybox /etc; \
     touch /made-inside && echo touched; \
     echo x > /hostpath/f 2>/dev/null && echo hostpath-written || echo hostpath-refused; \
     echo x > /emptydir/f && echo emptydir-written; \
     mknod /null c 1 3 2>/dev/null && echo mknod-done || echo mknod-refused; \
     ls /sys/kernel >/dev/null && echo sys-readable; \
     touch /sys/kernel/x 2>/dev/null && echo sys-written || echo sys-read-only; \
     ls /proc/1/ >/dev/null && echo proc-ok; ls -ln /dev/null | awk '{print $1}'";

/// A user namespace bundle: the busybox tree (owned by host root) as the
/// only layer, seen through an idmapped overlay as the CRI makes a
/// `hostUsers: false` rootfs; a root-owned "hostPath" and an "emptyDir"
/// chowned to the pod's root. `tweak` adds namespaces to join.
struct UsernsBundle {
    b: Bundle,
    layer: PathBuf,
    host_path: PathBuf,
    empty_dir: PathBuf,
    _host: tempfile::TempDir,
}

impl UsernsBundle {
    fn new(tweak: impl FnOnce(&mut ContainerConfig)) -> UsernsBundle {
        use skiff_runtime::linux::userns::Mappings;
        let host = tempfile::tempdir().unwrap();
        let (host_path, empty_dir) = (host.path().join("hostpath"), host.path().join("emptydir"));
        for d in [&host_path, &empty_dir] {
            std::fs::create_dir(d).unwrap();
        }
        std::os::unix::fs::chown(&empty_dir, Some(USERNS_BASE), Some(USERNS_BASE)).unwrap();
        let b = Bundle::new(&["sh", "-c", USERNS_PROBE], |c| {
            c.user_namespace = Some(Mappings::pod(USERNS_BASE));
            c.mounts = vec![
                BindMount {
                    source: host_path.display().to_string(),
                    destination: "/hostpath".into(),
                    readonly: false,
                },
                BindMount {
                    source: empty_dir.display().to_string(),
                    destination: "/emptydir".into(),
                    readonly: false,
                },
            ];
            tweak(c);
        });
        let layer = b.path().join("layer");
        std::fs::rename(b.path().join("rootfs"), &layer).unwrap();
        UsernsBundle {
            b,
            layer,
            host_path,
            empty_dir,
            _host: host,
        }
    }

    /// Runs it with `runtime` on a fresh idmapped overlay: its output and
    /// the overlay's upper directory.
    fn run(&self, runtime: &str) -> (Output, PathBuf) {
        use skiff_runtime::container::bundle::Overlay;
        use skiff_runtime::linux::userns::Mappings;
        let dir = self.b.path();
        let upper = dir.join(format!("upper-{runtime}"));
        let overlay = Overlay {
            lowerdirs: vec![self.layer.clone()],
            upperdir: upper.clone(),
            workdir: dir.join(format!("work-{runtime}")),
            idmap: Some(Mappings::pod(USERNS_BASE)),
        };
        let rootfs = dir.join("rootfs");
        overlay.mount(&rootfs).unwrap();
        assert!(
            !dir.join("rootfs.idmapped").exists(),
            "staging mounts are gone"
        );
        let out = self.b.run_with(runtime);
        nix::mount::umount2(&rootfs, nix::mount::MntFlags::MNT_DETACH).unwrap();
        let _ = std::fs::remove_file(self.empty_dir.join("f"));
        (out, upper)
    }
}

/// What root in the container's user namespace sees, joining the pod's
/// network and UTS namespaces (pinned by the host, as a sandbox's), what
/// the host sees of what it wrote, and what it may not do (write a
/// host-owned directory, make a device node: CAP_DAC_OVERRIDE and
/// CAP_MKNOD are its, but only over its own IDs).
#[test]
#[ignore = "needs root: user namespaces, idmapped mounts, overlayfs"]
fn user_namespace_seen_from_inside_and_outside() {
    let pinned = Pinned(tempfile::tempdir().unwrap());
    let p = |ns: &str| pinned.0.path().join(ns).display().to_string();
    for ns in ["net", "uts", "ipc"] {
        std::fs::write(pinned.0.path().join(ns), "").unwrap();
    }
    let made = Command::new("unshare")
        .arg(format!("--net={}", p("net")))
        .arg(format!("--uts={}", p("uts")))
        .args(["hostname", "pod-host"])
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", stderr(&made));
    let u = UsernsBundle::new(|c| {
        c.join = vec![("network".into(), p("net")), ("uts".into(), p("uts"))];
    });
    let (ours, upper) = u.run("skiff");
    // The network namespace is the host's: /sys is its read-only bind.
    let want = format!(
        "0\n0\n         0     {USERNS_BASE}      65536\n         0     {USERNS_BASE}      65536\n\
         pod-host\n0:0 /\n0:0 /bin/busybox\n0:0 /etc\ntouched\nhostpath-refused\n\
         emptydir-written\nmknod-refused\nsys-readable\nsys-read-only\nproc-ok\ncrw-rw-rw-\n"
    );
    assert_eq!(stdout(&ours), want, "{}", stderr(&ours));
    assert!(ours.status.success(), "{}", stderr(&ours));
    // Outside: what root inside made is the mapped uid's; the host's files
    // were not touched, nor the layer chowned.
    use std::os::unix::fs::MetadataExt;
    let made = std::fs::metadata(upper.join("made-inside")).unwrap();
    assert_eq!((made.uid(), made.gid()), (USERNS_BASE, USERNS_BASE));
    assert!(!u.host_path.join("f").exists());
    let layer_owner = std::fs::metadata(u.layer.join("bin/busybox")).unwrap();
    assert_eq!(layer_owner.uid(), 0, "the layer itself is not chowned");
}

/// The differential: the same user namespace bundle run by runc gives the
/// same observations. (Its own network namespace: runc 1.1 has no answer
/// for a sysfs it may not mount.)
#[test]
#[ignore = "needs root: user namespaces, idmapped mounts, overlayfs, runc"]
fn user_namespace_same_as_runc() {
    let u = UsernsBundle::new(|_| {});
    let (ours, _) = u.run("skiff");
    let (theirs, upper) = u.run("runc");
    assert!(ours.status.success(), "{}", stderr(&ours));
    assert!(theirs.status.success(), "{}", stderr(&theirs));
    assert_eq!(stdout(&ours), stdout(&theirs), "runc: {}", stderr(&theirs));
    assert!(
        stdout(&ours).contains("skiffbox\n0:0 /\n"),
        "{}",
        stdout(&ours)
    );
    use std::os::unix::fs::MetadataExt;
    let made = std::fs::metadata(upper.join("made-inside")).unwrap();
    assert_eq!(made.uid(), USERNS_BASE);
}
