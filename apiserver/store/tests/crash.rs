//! Durability: writers count what the store acknowledged, the store is
//! killed with SIGKILL in the middle of their stream, restarted on the same
//! data directory, and every acknowledged write must be there, with the
//! revision it was acknowledged at; revisions then go on from where they were.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use etcd_client::{Compare, CompareOp, GetOptions, PutOptions, Txn, TxnOp};

use common::ServerKind;

#[derive(Debug, Clone)]
enum Acked {
    /// key, value, revision
    Put(String, String, i64),
    /// key, revision of the delete
    Deleted(String, i64),
}

const WRITERS: usize = 6;
const ROUNDS: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill() {
    crash_rounds(&[], 0).await;
}

/// The same with the database synced every 20 ms, so kills land before,
/// during and after checkpoints and the deletion of old log segments.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill_around_checkpoints() {
    crash_rounds(&["--backend-batch-interval", "20ms"], 3).await;
}

/// Runs the rounds; each must see at least `checkpoints_per_round`
/// checkpoints before its kill.
async fn crash_rounds(args: &[&str], checkpoints_per_round: u32) {
    let mut server = common::server_with(ServerKind::SkiffStore, args).await;
    let mut all_acked: Vec<Acked> = Vec::new();
    let mut all_delete_attempts: Vec<String> = Vec::new();
    let mut lease_id = None;

    for round in 0..ROUNDS {
        let mut c = server.client().await.unwrap();
        // A lease with a key, to see leases survive too.
        if lease_id.is_none() {
            let lease = c.lease_grant(3600, None).await.unwrap().id();
            c.put(
                "crash/leased",
                "x",
                Some(PutOptions::new().with_lease(lease)),
            )
            .await
            .unwrap();
            lease_id = Some(lease);
        }
        let acked = Arc::new(Mutex::new(Vec::new()));
        // A delete in flight at the kill may or may not have been committed.
        let delete_attempts = Arc::new(Mutex::new(Vec::new()));
        let mut writers = Vec::new();
        for w in 0..WRITERS {
            let mut c = server.client().await.unwrap();
            let acked = acked.clone();
            let delete_attempts = delete_attempts.clone();
            writers.push(tokio::spawn(async move {
                for i in 0.. {
                    let key = format!("crash/{round}/{w}/{i}");
                    let value = format!("value-{round}-{w}-{i}");
                    // Alternate plain puts and txns; every 7th write deletes
                    // the key written just before it.
                    let result = if i % 7 == 6 {
                        let prev = format!("crash/{round}/{w}/{}", i - 1);
                        delete_attempts.lock().unwrap().push(prev.clone());
                        c.delete(prev.clone(), None)
                            .await
                            .map(|r| Acked::Deleted(prev, r.header().unwrap().revision()))
                    } else if i % 2 == 0 {
                        c.put(key.clone(), value.clone(), None)
                            .await
                            .map(|r| Acked::Put(key, value, r.header().unwrap().revision()))
                    } else {
                        let txn = Txn::new()
                            .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
                            .and_then([TxnOp::put(key.clone(), value.clone(), None)]);
                        c.txn(txn).await.map(|r| {
                            assert!(r.succeeded());
                            Acked::Put(key, value, r.header().unwrap().revision())
                        })
                    };
                    match result {
                        Ok(done) => acked.lock().unwrap().push(done),
                        Err(_) => return, // the store is gone
                    }
                }
            }));
        }
        // Let a few hundred writes through, then pull the plug mid-stream.
        while acked.lock().unwrap().len() < 200 + round * 100 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let metrics = common::http_get(&server.endpoint, "/metrics");
        let checkpoints = common::metric(&metrics, "skiff_store_checkpoints_total");
        assert!(
            checkpoints >= f64::from(checkpoints_per_round),
            "{checkpoints} checkpoints before the kill"
        );
        server.kill9().unwrap();

        for writer in writers {
            writer.await.unwrap();
        }
        let acked = acked.lock().unwrap().clone();
        all_acked.extend(acked);
        all_delete_attempts.extend(delete_attempts.lock().unwrap().iter().cloned());

        server
            .launch()
            .await
            .expect("the store restarts on the same data directory");
        let mut c = server.client().await.unwrap();
        let mut max_revision = 0;
        for write in &all_acked {
            match write {
                Acked::Put(key, value, revision) => {
                    let got = c.get(key.as_str(), None).await.unwrap();
                    // A put may have been deleted later by an acknowledged delete.
                    let deleted_later = all_acked
                        .iter()
                        .any(|w| matches!(w, Acked::Deleted(k, r) if k == key && r > revision));
                    if deleted_later {
                        assert!(
                            got.kvs().is_empty(),
                            "{key} was deleted after rev {revision}"
                        );
                    } else if got.kvs().is_empty() && all_delete_attempts.contains(key) {
                        // Deleted by a delete that was in flight at the kill: committed, not acknowledged.
                    } else {
                        let kv = got
                            .kvs()
                            .first()
                            .unwrap_or_else(|| panic!("acknowledged {key} at {revision} is lost"));
                        assert_eq!(kv.value_str().unwrap(), value);
                        assert_eq!(kv.mod_revision(), *revision, "{key}");
                    }
                    max_revision = max_revision.max(*revision);
                }
                Acked::Deleted(key, revision) => {
                    assert!(
                        c.get(key.as_str(), None).await.unwrap().kvs().is_empty(),
                        "{key} deleted at {revision}"
                    );
                    max_revision = max_revision.max(*revision);
                }
            }
        }
        let leased = c.get("crash/leased", None).await.unwrap();
        assert_eq!(
            leased.kvs()[0].lease(),
            lease_id.unwrap(),
            "the lease and its key survive"
        );
        let next = c.put("crash/after", round.to_string(), None).await.unwrap();
        assert!(
            next.header().unwrap().revision() > max_revision,
            "revisions go on after the crash"
        );
        // History survives as well: the whole round is readable at its last acknowledged revision.
        let past = c
            .get(
                format!("crash/{round}/"),
                Some(
                    GetOptions::new()
                        .with_prefix()
                        .with_revision(max_revision)
                        .with_count_only(),
                ),
            )
            .await
            .unwrap();
        assert!(past.count() > 0);
    }
    assert!(
        all_acked.len() >= 900,
        "the test checked {} acknowledged writes",
        all_acked.len()
    );
}
