//! `etcdctl` (Debian's etcd-client, API v3) against the store: the commands
//! people type in a class. Each case also runs against a real etcd, so the
//! expected output is etcd's own.

mod common;

use skiff_store::harness::ServerProcess;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

against_both!(
    put_get_del_and_revisions,
    watch_prints_changes,
    txn_from_stdin,
    compaction,
    leases,
    endpoint_and_members
);

/// Runs `etcdctl <args>` against `server`, feeding `stdin`; returns stdout.
fn etcdctl_with_input(server: &ServerProcess, args: &[&str], stdin: &str) -> String {
    let mut child = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={}", server.endpoint))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect(
            "etcdctl is installed (Debian's etcd-client; the README's test command installs it)",
        );
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "etcdctl {args:?} failed: {}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn etcdctl(server: &ServerProcess, args: &[&str]) -> String {
    etcdctl_with_input(server, args, "")
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|err| panic!("not JSON ({err}): {text}"))
}

async fn put_get_del_and_revisions(server: &ServerProcess) {
    assert_eq!(etcdctl(server, &["put", "greeting", "hello"]), "OK\n");
    let first = json(&etcdctl(server, &["get", "greeting", "-w", "json"]));
    let first_rev = first["header"]["revision"].as_i64().unwrap();
    assert_eq!(etcdctl(server, &["put", "greeting", "bonjour"]), "OK\n");
    assert_eq!(etcdctl(server, &["put", "gravity", "9.81"]), "OK\n");

    assert_eq!(etcdctl(server, &["get", "greeting"]), "greeting\nbonjour\n");
    assert_eq!(
        etcdctl(server, &["get", "greeting", &format!("--rev={first_rev}")]),
        "greeting\nhello\n"
    );
    assert_eq!(
        etcdctl(server, &["get", "gr", "--prefix"]),
        "gravity\n9.81\ngreeting\nbonjour\n"
    );
    assert_eq!(
        etcdctl(server, &["get", "gr", "--prefix", "--keys-only"]),
        "gravity\n\ngreeting\n\n"
    );
    let counted = json(&etcdctl(server, &["get", "gr", "--prefix", "-w", "json"]));
    assert_eq!(counted["count"], 2);

    assert_eq!(etcdctl(server, &["del", "greeting"]), "1\n");
    assert_eq!(etcdctl(server, &["get", "greeting"]), "");
    assert_eq!(etcdctl(server, &["del", "gr", "--prefix"]), "1\n");
}

async fn watch_prints_changes(server: &ServerProcess) {
    etcdctl(server, &["put", "lamp", "off"]);
    let now = json(&etcdctl(server, &["get", "lamp", "-w", "json"]))["header"]["revision"]
        .as_i64()
        .unwrap();
    // Starting at the next revision makes the output independent of when
    // the watch is in place: anything earlier is replayed from history.
    let mut watcher = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={}", server.endpoint))
        .args(["watch", "lamp", "--prev-kv", &format!("--rev={}", now + 1)])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = watcher.stdout.take().unwrap();
    etcdctl(server, &["put", "lamp", "on"]);
    etcdctl(server, &["del", "lamp"]);
    let mut lines = Vec::new();
    for line in BufReader::new(stdout).lines() {
        lines.push(line.unwrap());
        if lines.len() == 10 {
            break;
        }
    }
    let _ = watcher.kill();
    let _ = watcher.wait();
    // With --prev-kv each event prints its type, the previous key and value,
    // then the key and its new value (empty for a delete).
    assert_eq!(
        lines,
        [
            "PUT", "lamp", "off", "lamp", "on", "DELETE", "lamp", "on", "lamp", ""
        ]
    );
}

async fn txn_from_stdin(server: &ServerProcess) {
    etcdctl(server, &["put", "door", "closed"]);
    // compares, blank line, success requests, blank line, failure requests.
    let script =
        "value(\"door\") = \"closed\"\n\nput door open\nput bell rung\n\nput door jammed\n\n";
    let out = etcdctl_with_input(server, &["txn"], script);
    assert_eq!(out, "SUCCESS\n\nOK\n\nOK\n");
    assert_eq!(
        etcdctl(server, &["get", "door", "--print-value-only"]),
        "open\n"
    );
    let out = etcdctl_with_input(server, &["txn"], script);
    assert_eq!(out, "FAILURE\n\nOK\n");
    assert_eq!(
        etcdctl(server, &["get", "door", "--print-value-only"]),
        "jammed\n"
    );
}

async fn compaction(server: &ServerProcess) {
    etcdctl(server, &["put", "v", "1"]);
    let rev1 = json(&etcdctl(server, &["get", "v", "-w", "json"]))["header"]["revision"]
        .as_i64()
        .unwrap();
    etcdctl(server, &["put", "v", "2"]);
    etcdctl(server, &["put", "v", "3"]);
    let rev3 = json(&etcdctl(server, &["get", "v", "-w", "json"]))["header"]["revision"]
        .as_i64()
        .unwrap();
    assert_eq!(
        etcdctl(server, &["compaction", &rev3.to_string()]),
        format!("compacted revision {rev3}\n")
    );
    assert_eq!(
        etcdctl(
            server,
            &["get", "v", &format!("--rev={rev3}"), "--print-value-only"]
        ),
        "3\n"
    );
    let old = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={}", server.endpoint))
        .args(["get", "v", &format!("--rev={rev1}")])
        .output()
        .unwrap();
    assert!(!old.status.success());
    assert!(String::from_utf8_lossy(&old.stderr).contains("required revision has been compacted"));
}

async fn leases(server: &ServerProcess) {
    let granted = etcdctl(server, &["lease", "grant", "120"]);
    // "lease 694d5765fc71500b granted with TTL(120s)"
    let id = granted.split_whitespace().nth(1).unwrap().to_string();
    assert_eq!(granted, format!("lease {id} granted with TTL(120s)\n"));
    assert_eq!(
        etcdctl(
            server,
            &["put", "session", "alive", &format!("--lease={id}")]
        ),
        "OK\n"
    );
    let kept = etcdctl(server, &["lease", "keep-alive", "--once", &id]);
    assert_eq!(kept, format!("lease {id} keepalived with TTL(120)\n"));
    let ttl = etcdctl(server, &["lease", "timetolive", &id, "--keys"]);
    assert!(
        ttl.starts_with(&format!("lease {id} granted with TTL(120s), remaining(")),
        "{ttl}"
    );
    assert!(ttl.ends_with("attached keys([session])\n"), "{ttl}");
    assert!(etcdctl(server, &["lease", "list"]).contains(&id));
    assert_eq!(
        etcdctl(server, &["lease", "revoke", &id]),
        format!("lease {id} revoked\n")
    );
    assert_eq!(etcdctl(server, &["get", "session"]), "");
}

async fn endpoint_and_members(server: &ServerProcess) {
    let status = json(&etcdctl(server, &["endpoint", "status", "-w", "json"]));
    let first = &status[0];
    assert_eq!(first["Endpoint"], server.endpoint);
    let st = &first["Status"];
    assert!(st["version"].as_str().unwrap().starts_with("3."), "{st}");
    assert_eq!(
        st["leader"], st["header"]["member_id"],
        "a single member leads"
    );
    assert!(st["dbSize"].as_i64().unwrap() > 0);
    let table = etcdctl(server, &["endpoint", "status"]);
    assert!(
        table.starts_with(&format!("{}, ", server.endpoint)),
        "{table}"
    );

    let health = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={}", server.endpoint))
        .args(["endpoint", "health"])
        .output()
        .unwrap();
    // etcdctl 3.4 prints the health line on stderr.
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&health.stdout),
        String::from_utf8_lossy(&health.stderr)
    );
    assert!(
        health.status.success() && text.contains("is healthy"),
        "{text}"
    );

    let members = etcdctl(server, &["member", "list"]);
    assert_eq!(members.lines().count(), 1, "{members}");
    assert!(members.contains(&server.endpoint), "{members}");
}
