//! The systemd units of `deploy/systemd/` start what exists, with flags the
//! programs take (no root needed):
//!
//! - every unit parses, has a description, restarts always, reads
//!   `/etc/default/skiff`, is wanted by `multi-user.target`, keeps its data
//!   under `/var/lib/skiff`;
//! - its `ExecStart` binary is one of the workspace's binaries (`cargo
//!   metadata`), installed in `/usr/local/bin`;
//! - every variable its `ExecStart` uses has a default (`Environment=`) or
//!   is set in the example `/etc/default/skiff` (`skiff.default`), so none
//!   silently expands to nothing;
//! - the `ExecStart` line, expanded as systemd does with the example
//!   settings, is accepted by the built binary: the same arguments plus
//!   `--help` exit 0 (clap rejects an unknown flag or a bad value before it
//!   gets to `--help`);
//! - the kubelet's unit (and `skiff server`'s and `skiff join`'s, which run
//!   a kubelet) delegates its cgroup and kills only the main process, so
//!   containers outlive a restart;
//! - `systemd-analyze verify` (when installed) finds nothing to say.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The five programs' units, and the launcher's.
const PROGRAM_UNITS: &[&str] = &[
    "skiff-apiserver",
    "skiff-controller-manager",
    "skiff-scheduler",
    "skiff-kubelet",
    "skiff-proxy",
];
const LAUNCHER_UNITS: &[&str] = &["skiff-server", "skiff-join"];

fn systemd_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd")
}

fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_skiff"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A unit file: (section, key, value) in order, continuation lines joined.
struct Unit {
    name: String,
    entries: Vec<(String, String, String)>,
}

impl Unit {
    fn parse(name: &str, text: &str) -> Unit {
        let mut entries = Vec::new();
        let mut section = String::new();
        let mut pending = String::new();
        for raw in text.lines() {
            let line = raw.trim();
            if pending.is_empty() && (line.is_empty() || line.starts_with(['#', ';'])) {
                continue;
            }
            if let Some(head) = line.strip_suffix('\\') {
                pending.push_str(head);
                pending.push(' ');
                continue;
            }
            let line = std::mem::take(&mut pending) + line;
            if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = s.to_string();
                continue;
            }
            let (key, value) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("{name}: not key=value: {line:?}"));
            assert!(!section.is_empty(), "{name}: {key} before any section");
            entries.push((section.clone(), key.trim().into(), value.trim().into()));
        }
        assert!(pending.is_empty(), "{name}: ends in a continuation");
        Unit {
            name: name.into(),
            entries,
        }
    }

    fn all(&self, section: &str, key: &str) -> Vec<&str> {
        self.entries
            .iter()
            .filter(|(s, k, _)| s == section && k == key)
            .map(|(_, _, v)| v.as_str())
            .collect()
    }

    fn one(&self, section: &str, key: &str) -> &str {
        let v = self.all(section, key);
        assert_eq!(v.len(), 1, "{}: [{section}] {key}: {v:?}", self.name);
        v[0]
    }

    /// The environment systemd gives ExecStart: Environment= first, then
    /// the EnvironmentFile (here the example one) overriding it.
    fn environment(&self, file: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        for v in self.all("Service", "Environment") {
            for word in words(v) {
                let (k, v) = word
                    .split_once('=')
                    .unwrap_or_else(|| panic!("{}: Environment={word}", self.name));
                env.insert(k.to_string(), v.to_string());
            }
        }
        env.extend(file.iter().map(|(k, v)| (k.clone(), v.clone())));
        env
    }
}

/// Splits a systemd command line or assignment list into words ("…" and
/// '…' quote; no escapes other than `\"` are used in these units).
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return out;
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        while let Some(c) = chars.next() {
            match (quote, c) {
                (None, c) if c.is_whitespace() => break,
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (_, '\\') if chars.peek() == Some(&'"') => word.push(chars.next().unwrap()),
                (_, c) => word.push(c),
            }
        }
        out.push(word);
    }
}

/// The variables a command line uses: `$NAME` and `${NAME}` (not `$$`).
fn variables(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' {
            if b.get(i + 1) == Some(&b'$') {
                i += 2;
                continue;
            }
            let (start, braced) = if b.get(i + 1) == Some(&b'{') {
                (i + 2, true)
            } else {
                (i + 1, false)
            };
            let end = (start..b.len())
                .find(|&j| !(b[j].is_ascii_alphanumeric() || b[j] == b'_'))
                .unwrap_or(b.len());
            out.push(line[start..end].to_string());
            i = end + usize::from(braced);
        } else {
            i += 1;
        }
    }
    out
}

/// ExecStart as systemd runs it: a word that is `$NAME` becomes the value
/// split at whitespace (zero or more arguments); `${NAME}` is replaced
/// inside its word (one argument); `$$` is `$`.
fn expand(line: &str, env: &BTreeMap<String, String>) -> Vec<String> {
    let get = |name: &str| env.get(name).cloned().unwrap_or_default();
    let mut out = Vec::new();
    for word in words(line) {
        if let Some(name) = word.strip_prefix('$')
            && !name.starts_with(['{', '$'])
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            out.extend(get(name).split_whitespace().map(String::from));
            continue;
        }
        let mut text = String::new();
        let mut rest = word.as_str();
        while let Some(i) = rest.find('$') {
            text.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            if let Some(tail) = after.strip_prefix('$') {
                text.push('$');
                rest = tail;
            } else if let Some(inner) = after.strip_prefix('{') {
                let end = inner.find('}').expect("an unclosed ${");
                text.push_str(&get(&inner[..end]));
                rest = &inner[end + 1..];
            } else {
                panic!("{word}: $NAME inside a word (systemd leaves it as is)");
            }
        }
        text.push_str(rest);
        out.push(text);
    }
    out
}

/// The example /etc/default/skiff: KEY=VALUE lines.
fn example_env() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(systemd_dir().join("skiff.default")).unwrap();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or_else(|| panic!("{l:?}"));
            (k.to_string(), v.trim_matches('"').to_string())
        })
        .collect()
}

/// The names of the workspace's binaries, as cargo knows them.
fn workspace_binaries() -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut bins = Vec::new();
    for p in meta["packages"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            if t["kind"].as_array().unwrap().iter().any(|k| k == "bin") {
                bins.push(t["name"].as_str().unwrap().to_string());
            }
        }
    }
    bins
}

fn units() -> Vec<Unit> {
    let mut found: Vec<Unit> = std::fs::read_dir(systemd_dir())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".service"))
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            Unit::parse(&name, &std::fs::read_to_string(e.path()).unwrap())
        })
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    let names: Vec<&str> = found.iter().map(|u| u.name.as_str()).collect();
    for want in PROGRAM_UNITS.iter().chain(LAUNCHER_UNITS) {
        assert!(
            names.contains(&format!("{want}.service").as_str()),
            "{want}.service missing: {names:?}"
        );
    }
    found
}

/// Whether the built `skiff` has subcommand `sub` (`skiff server` and
/// `skiff join` came later than `skiff up`).
fn skiff_has(sub: &str) -> bool {
    let out = Command::new(env!("CARGO_BIN_EXE_skiff"))
        .arg("--help")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.trim_start().starts_with(&format!("{sub} ")))
}

#[test]
fn every_unit_starts_a_workspace_binary_with_flags_it_takes() {
    let bins = workspace_binaries();
    let example = example_env();
    for unit in units() {
        let name = unit.name.as_str();
        let stem = name.trim_end_matches(".service");
        assert!(!unit.one("Unit", "Description").is_empty(), "{name}");
        assert_eq!(unit.one("Service", "Restart"), "always", "{name}");
        assert_eq!(
            unit.one("Service", "EnvironmentFile"),
            "-/etc/default/skiff",
            "{name}"
        );
        assert_eq!(
            unit.one("Install", "WantedBy"),
            "multi-user.target",
            "{name}"
        );
        for (_, _, v) in &unit.entries {
            for (i, _) in v.match_indices("/var/lib/") {
                assert!(
                    v[i..].starts_with("/var/lib/skiff"),
                    "{name}: data outside /var/lib/skiff: {v}"
                );
            }
        }

        let exec = unit.one("Service", "ExecStart");
        let env = unit.environment(&example);
        for var in variables(exec) {
            assert!(
                env.contains_key(&var),
                "{name}: ExecStart uses ${var}, set neither by Environment= nor in skiff.default"
            );
        }
        let argv = expand(exec, &env);
        let binary = argv[0].trim_start_matches(['-', '@', ':', '+', '!']);
        let program = binary
            .strip_prefix("/usr/local/bin/")
            .unwrap_or_else(|| panic!("{name}: {binary} is not in /usr/local/bin"));
        assert!(
            bins.iter().any(|b| b == program),
            "{name}: {program} is not one of the workspace's binaries {bins:?}"
        );

        let built = bin_dir().join(program);
        assert!(
            built.exists(),
            "{} is not built: cargo build --bins first",
            built.display()
        );
        if LAUNCHER_UNITS.contains(&stem) {
            let sub = &argv[1];
            if !skiff_has(sub) {
                // `skiff server`/`skiff join` are younger than `skiff up`:
                // an older build cannot check their flags.
                eprintln!("{name}: this skiff has no `{sub}` subcommand yet: flags not checked");
                continue;
            }
        } else {
            assert_eq!(program, stem, "{name} runs {program}");
        }
        let out = Command::new(&built)
            .args(&argv[1..])
            .arg("--help")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {program} {:?} --help: {}",
            &argv[1..],
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn kubelets_outlive_their_unit_and_programs_start_in_order() {
    let units = units();
    let get = |stem: &str| {
        units
            .iter()
            .find(|u| u.name == format!("{stem}.service"))
            .unwrap()
    };
    // Units that run a kubelet: its containers outlive a stop or restart
    // (only the main process is killed), and it makes the pods' cgroups.
    for stem in ["skiff-kubelet", "skiff-server", "skiff-join"] {
        let u = get(stem);
        assert_eq!(u.one("Service", "KillMode"), "process", "{stem}");
        assert_eq!(u.one("Service", "Delegate"), "yes", "{stem}");
    }
    for stem in ["skiff-apiserver", "skiff-scheduler", "skiff-proxy"] {
        assert!(get(stem).all("Service", "KillMode").is_empty(), "{stem}");
    }
    // The controllers come after the API server whose kubeconfig they use.
    for stem in ["skiff-controller-manager", "skiff-scheduler"] {
        let u = get(stem);
        assert!(
            u.one("Unit", "After").contains("skiff-apiserver.service"),
            "{stem}"
        );
        assert!(
            u.one("Unit", "Wants").contains("skiff-apiserver.service"),
            "{stem}"
        );
    }
    // Every unit waits for the network; server and join exclude the
    // program units (they would fight over the same ports).
    for u in &units {
        assert!(u.one("Unit", "After").contains("network-online.target"));
    }
    for stem in LAUNCHER_UNITS {
        let conflicts = get(stem).one("Unit", "Conflicts");
        for p in PROGRAM_UNITS {
            assert!(conflicts.contains(&format!("{p}.service")), "{stem}: {p}");
        }
    }
}

#[test]
fn systemd_analyze_finds_nothing_to_say() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("systemd-analyze is not installed: skipped");
        return;
    }
    // The binaries where the build put them, as systemd checks they exist.
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for e in std::fs::read_dir(systemd_dir()).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".service") {
            continue;
        }
        let text = std::fs::read_to_string(e.path())
            .unwrap()
            .replace("/usr/local/bin/", &format!("{}/", bin_dir().display()));
        let path = dir.path().join(&name);
        std::fs::write(&path, text).unwrap();
        paths.push(path);
    }
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .args(&paths)
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && said.trim().is_empty(), "{said}");
}

#[test]
fn expansion_follows_systemd() {
    let env = BTreeMap::from([
        ("A".to_string(), "x y".to_string()),
        ("E".to_string(), String::new()),
    ]);
    assert_eq!(
        expand("/bin/p --a ${A} $A $E https://${A}:1 $$x", &env),
        ["/bin/p", "--a", "x y", "x", "y", "https://x y:1", "$x"]
    );
    assert_eq!(variables("p ${A} $B $$C"), ["A", "B"]);
    assert_eq!(words(r#"A=1 "B=2 3" C="#), ["A=1", "B=2 3", "C="]);
}
