//! The etcd conformance suite: every case runs unchanged against skiff-store
//! and against a real etcd (Debian's etcd-server), through `etcd-client`.
//! A case failing on etcd means the expectation is wrong; failing only on
//! skiff-store means the store is.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_client::{
    Client, Compare, CompareOp, DeleteOptions, EventType, GetOptions, LeaseGrantOptions,
    LeaseTimeToLiveOptions, PutOptions, SortOrder, SortTarget, Txn, TxnOp, TxnOpResponse,
    WatchFilterType, WatchOptions, WatchResponse, WatchStream,
};
use skiff_store::harness::ServerProcess;
use tonic::Code;

use common::status_of;

against_both!(
    mvcc_fields,
    ranges_and_pagination,
    reads_of_the_past,
    txn_compare_semantics,
    txn_checks,
    watch_replays_history,
    watch_many_on_one_stream,
    watch_after_compaction,
    watch_progress,
    lease_revoke_and_expiry,
    concurrent_cas_writers,
    errors_like_etcd,
);

async fn client(server: &ServerProcess) -> Client {
    server.client().await.expect("connect")
}

fn revision_of(header: Option<&etcd_client::ResponseHeader>) -> i64 {
    header.expect("a response header").revision()
}

/// Next watch response, failing after 10s instead of hanging.
async fn next(stream: &mut WatchStream) -> WatchResponse {
    tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("a watch response within 10s")
        .expect("the watch stream works")
        .expect("the watch stream is open")
}

/// Collects events from `stream` until `count` have arrived: (type, key, value, mod_revision).
async fn collect_events(
    stream: &mut WatchStream,
    count: usize,
) -> Vec<(EventType, String, String, i64)> {
    let mut out = Vec::new();
    while out.len() < count {
        let resp = next(stream).await;
        for event in resp.events() {
            let kv = event.kv().expect("an event has a kv");
            out.push((
                event.event_type(),
                kv.key_str().unwrap().to_string(),
                kv.value_str().unwrap().to_string(),
                kv.mod_revision(),
            ));
        }
    }
    out
}

// ---- cases ---------------------------------------------------------------

/// Revisions, create/mod revisions and versions follow etcd's MVCC rules.
async fn mvcc_fields(server: &ServerProcess) {
    let mut c = client(server).await;
    // A new store is at revision 1.
    let r0 = revision_of(c.get("nothing", None).await.unwrap().header());
    assert_eq!(r0, 1);

    let put = c.put("a", "1", None).await.unwrap();
    assert_eq!(revision_of(put.header()), 2);
    let put = c
        .put("a", "2", Some(PutOptions::new().with_prev_key()))
        .await
        .unwrap();
    assert_eq!(revision_of(put.header()), 3);
    let prev = put.prev_key().expect("prev_kv asked for");
    assert_eq!(
        (prev.value(), prev.mod_revision(), prev.version()),
        (&b"1"[..], 2, 1)
    );

    let got = c.get("a", None).await.unwrap();
    let kv = &got.kvs()[0];
    assert_eq!(
        (
            kv.create_revision(),
            kv.mod_revision(),
            kv.version(),
            kv.value()
        ),
        (2, 3, 2, &b"2"[..])
    );

    c.put("b", "x", None).await.unwrap(); // 4
    let del = c
        .delete("a", Some(DeleteOptions::new().with_prev_key()))
        .await
        .unwrap();
    assert_eq!((del.deleted(), revision_of(del.header())), (1, 5));
    assert_eq!(del.prev_kvs()[0].value(), b"2");
    assert!(c.get("a", None).await.unwrap().kvs().is_empty());

    // Deleting nothing does not make a revision.
    let del = c.delete("a", None).await.unwrap();
    assert_eq!((del.deleted(), revision_of(del.header())), (0, 5));

    // A key created again starts a new generation.
    c.put("a", "3", None).await.unwrap();
    let kv = c.get("a", None).await.unwrap().kvs()[0].clone();
    assert_eq!(
        (kv.create_revision(), kv.mod_revision(), kv.version()),
        (6, 6, 1)
    );

    // ignore_value keeps the value; on a missing key it fails.
    c.put("a", "", Some(PutOptions::new().with_ignore_value()))
        .await
        .unwrap();
    let kv = c.get("a", None).await.unwrap().kvs()[0].clone();
    assert_eq!(
        (kv.value(), kv.version(), kv.mod_revision()),
        (&b"3"[..], 2, 7)
    );
    let err = status_of(
        c.put("missing", "", Some(PutOptions::new().with_ignore_value()))
            .await,
    );
    assert_eq!(
        (err.code(), err.message()),
        (Code::InvalidArgument, "etcdserver: key not found")
    );
}

/// Prefixes, ranges, limits with `more`, pagination, counts, keys-only and sorting.
async fn ranges_and_pagination(server: &ServerProcess) {
    let mut c = client(server).await;
    for i in 0..20 {
        c.put(format!("k/{i:02}"), format!("v{}", 19 - i), None)
            .await
            .unwrap();
    }
    c.put("k0", "outside the prefix", None).await.unwrap();
    c.put("j", "before", None).await.unwrap();

    let all = c
        .get("k/", Some(GetOptions::new().with_prefix()))
        .await
        .unwrap();
    assert_eq!(all.kvs().len(), 20);
    assert_eq!(all.count(), 20);
    assert!(!all.more());
    let keys: Vec<&str> = all.kvs().iter().map(|kv| kv.key_str().unwrap()).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "keys come in ascending order");

    let page = c
        .get("k/", Some(GetOptions::new().with_prefix().with_limit(5)))
        .await
        .unwrap();
    assert_eq!((page.kvs().len(), page.more(), page.count()), (5, true, 20));

    // Paginate the way the Kubernetes API server does: continue after the last key.
    let mut seen = Vec::new();
    let mut start = b"k/".to_vec();
    loop {
        let page = c
            .get(
                start.clone(),
                Some(GetOptions::new().with_range("k0").with_limit(6)),
            )
            .await
            .unwrap();
        for kv in page.kvs() {
            seen.push(kv.key_str().unwrap().to_string());
        }
        if !page.more() {
            break;
        }
        start = page.kvs().last().unwrap().key().to_vec();
        start.push(0);
    }
    assert_eq!(seen, keys, "every key exactly once across pages");

    let counted = c
        .get(
            "k/",
            Some(GetOptions::new().with_prefix().with_count_only()),
        )
        .await
        .unwrap();
    assert_eq!((counted.count(), counted.kvs().len()), (20, 0));

    let keys_only = c
        .get("k/", Some(GetOptions::new().with_prefix().with_keys_only()))
        .await
        .unwrap();
    assert!(keys_only.kvs().iter().all(|kv| kv.value().is_empty()));
    assert_eq!(keys_only.kvs().len(), 20);

    // From a key to the end of the key space.
    let from = c
        .get("k/15", Some(GetOptions::new().with_from_key()))
        .await
        .unwrap();
    let keys: Vec<&str> = from.kvs().iter().map(|kv| kv.key_str().unwrap()).collect();
    assert_eq!(keys, vec!["k/15", "k/16", "k/17", "k/18", "k/19", "k0"]);

    let all_keys = c
        .get(
            "",
            Some(GetOptions::new().with_all_keys().with_count_only()),
        )
        .await
        .unwrap();
    assert_eq!(all_keys.count(), 22);

    // Sorting: by key descending, and by value ascending with a limit.
    let desc = c
        .get(
            "k/",
            Some(
                GetOptions::new()
                    .with_prefix()
                    .with_sort(SortTarget::Key, SortOrder::Descend)
                    .with_limit(3),
            ),
        )
        .await
        .unwrap();
    let keys: Vec<&str> = desc.kvs().iter().map(|kv| kv.key_str().unwrap()).collect();
    assert_eq!((keys, desc.more()), (vec!["k/19", "k/18", "k/17"], true));
    let by_value = c
        .get(
            "k/",
            Some(
                GetOptions::new()
                    .with_prefix()
                    .with_sort(SortTarget::Value, SortOrder::Ascend)
                    .with_limit(2),
            ),
        )
        .await
        .unwrap();
    let values: Vec<&str> = by_value
        .kvs()
        .iter()
        .map(|kv| kv.value_str().unwrap())
        .collect();
    assert_eq!(values, vec!["v0", "v1"]);
    let by_mod = c
        .get(
            "k/",
            Some(
                GetOptions::new()
                    .with_prefix()
                    .with_sort(SortTarget::Mod, SortOrder::Descend)
                    .with_limit(1),
            ),
        )
        .await
        .unwrap();
    assert_eq!(by_mod.kvs()[0].key(), b"k/19");

    // Revision filters.
    let first_mod = all.kvs()[0].mod_revision();
    let filtered = c
        .get(
            "k/",
            Some(
                GetOptions::new()
                    .with_prefix()
                    .with_max_mod_revision(first_mod + 2),
            ),
        )
        .await
        .unwrap();
    assert_eq!(filtered.kvs().len(), 3);

    // A range whose end is before its start is empty, not an error.
    let empty = c
        .get("k/5", Some(GetOptions::new().with_range("k/1")))
        .await
        .unwrap();
    assert_eq!((empty.kvs().len(), empty.count()), (0, 0));
    let missing = c.get("nope", None).await.unwrap();
    assert_eq!((missing.kvs().len(), missing.count()), (0, 0));

    // Delete a prefix: every key goes in one revision.
    let before = revision_of(missing.header());
    let del = c
        .delete("k/", Some(DeleteOptions::new().with_prefix()))
        .await
        .unwrap();
    assert_eq!((del.deleted(), revision_of(del.header())), (20, before + 1));
}

/// Reads at past revisions see the store as it was, including deletions.
async fn reads_of_the_past(server: &ServerProcess) {
    let mut c = client(server).await;
    let r1 = revision_of(c.put("x", "1", None).await.unwrap().header());
    c.put("y", "1", None).await.unwrap();
    let r2 = revision_of(c.put("x", "2", None).await.unwrap().header());
    let r3 = revision_of(c.delete("x", None).await.unwrap().header());
    let r4 = revision_of(c.put("x", "3", None).await.unwrap().header());

    let at = |rev| Some(GetOptions::new().with_revision(rev));
    let value_at = |resp: etcd_client::GetResponse| {
        resp.kvs()
            .first()
            .map(|kv| kv.value_str().unwrap().to_string())
    };
    assert_eq!(
        value_at(c.get("x", at(r1)).await.unwrap()),
        Some("1".into())
    );
    assert_eq!(
        value_at(c.get("x", at(r2)).await.unwrap()),
        Some("2".into())
    );
    assert_eq!(value_at(c.get("x", at(r3)).await.unwrap()), None);
    assert_eq!(
        value_at(c.get("x", at(r4)).await.unwrap()),
        Some("3".into())
    );
    assert_eq!(value_at(c.get("x", at(r1 - 1)).await.unwrap()), None);

    // Ranges at a past revision, with the right versions; the header says now.
    let past = c
        .get(
            "",
            Some(GetOptions::new().with_all_keys().with_revision(r2)),
        )
        .await
        .unwrap();
    let seen: Vec<(String, String, i64)> = past
        .kvs()
        .iter()
        .map(|kv| {
            (
                kv.key_str().unwrap().into(),
                kv.value_str().unwrap().into(),
                kv.version(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![("x".into(), "2".into(), 2), ("y".into(), "1".into(), 1)]
    );
    assert_eq!(past.count(), 2);
    assert_eq!(revision_of(past.header()), r4);
    let counted = c
        .get(
            "",
            Some(
                GetOptions::new()
                    .with_all_keys()
                    .with_revision(r3)
                    .with_count_only(),
            ),
        )
        .await
        .unwrap();
    assert_eq!(counted.count(), 1);

    let err = status_of(c.get("x", at(r4 + 10)).await);
    assert_eq!(
        (err.code(), err.message()),
        (
            Code::OutOfRange,
            "etcdserver: mvcc: required revision is a future revision"
        )
    );
}

/// Txn compares on value, version, create and mod revision and lease, on
/// single keys and ranges, and what each branch does.
async fn txn_compare_semantics(server: &ServerProcess) {
    let mut c = client(server).await;
    // Create-if-absent, the Kubernetes API server's create.
    let create = || {
        Txn::new()
            .when([Compare::create_revision("obj", CompareOp::Equal, 0)])
            .and_then([TxnOp::put("obj", "v1", None)])
            .or_else([TxnOp::get("obj", None)])
    };
    let first = c.txn(create()).await.unwrap();
    assert!(first.succeeded());
    let created_at = revision_of(first.header());
    let second = c.txn(create()).await.unwrap();
    assert!(!second.succeeded());
    assert_eq!(
        revision_of(second.header()),
        created_at,
        "a read-only txn makes no revision"
    );
    match &second.op_responses()[0] {
        TxnOpResponse::Get(get) => assert_eq!(get.kvs()[0].value(), b"v1"),
        other => panic!("expected a get response, got {other:?}"),
    }

    // Update-if-unchanged, the API server's update.
    let update = |expected| {
        Txn::new()
            .when([Compare::mod_revision("obj", CompareOp::Equal, expected)])
            .and_then([
                TxnOp::put("obj", "v2", None),
                TxnOp::put("obj-side", "s", None),
                TxnOp::get("obj", None),
            ])
    };
    let stale = c.txn(update(created_at - 1)).await.unwrap();
    assert!(!stale.succeeded());
    let fresh = c.txn(update(created_at)).await.unwrap();
    assert!(fresh.succeeded());
    assert_eq!(
        revision_of(fresh.header()),
        created_at + 1,
        "two puts in one txn share one revision"
    );
    match &fresh.op_responses()[2] {
        // A get after a put in the same txn sees the put.
        TxnOpResponse::Get(get) => {
            assert_eq!(get.kvs()[0].value(), b"v2");
            assert_eq!(get.kvs()[0].mod_revision(), created_at + 1);
        }
        other => panic!("expected a get response, got {other:?}"),
    }

    let check = |cmp: Compare| Txn::new().when([cmp]);
    let holds = [
        Compare::value("obj", CompareOp::Equal, "v2"),
        Compare::value("obj", CompareOp::Greater, "v1"),
        Compare::value("obj", CompareOp::NotEqual, "zz"),
        Compare::version("obj", CompareOp::Equal, 2),
        Compare::version("obj", CompareOp::Greater, 1),
        Compare::create_revision("obj", CompareOp::Equal, created_at),
        Compare::mod_revision("obj", CompareOp::Less, created_at + 2),
        Compare::lease("obj", CompareOp::Equal, 0),
        Compare::version("missing", CompareOp::Equal, 0),
        // Every key of a range must satisfy the compare.
        Compare::version("obj", CompareOp::Greater, 0).with_prefix(),
    ];
    for cmp in holds {
        let debug = format!("{cmp:?}");
        assert!(
            c.txn(check(cmp)).await.unwrap().succeeded(),
            "should hold: {debug}"
        );
    }
    let fails = [
        Compare::value("obj", CompareOp::Less, "v2"),
        Compare::version("obj", CompareOp::Equal, 1),
        // A value compare on a missing key is false whatever the value.
        Compare::value("missing", CompareOp::NotEqual, "x"),
        Compare::version("obj", CompareOp::Equal, 2).with_prefix(), // obj-side has version 1
    ];
    for cmp in fails {
        let debug = format!("{cmp:?}");
        assert!(
            !c.txn(check(cmp)).await.unwrap().succeeded(),
            "should fail: {debug}"
        );
    }

    // A nested txn takes its own branch.
    let nested = Txn::new()
        .when([Compare::value("obj", CompareOp::Equal, "v2")])
        .and_then([TxnOp::txn(
            Txn::new()
                .when([Compare::value("obj-side", CompareOp::Equal, "nope")])
                .and_then([TxnOp::put("inner", "then", None)])
                .or_else([TxnOp::put("inner", "else", None)]),
        )]);
    let resp = c.txn(nested).await.unwrap();
    assert!(resp.succeeded());
    match &resp.op_responses()[0] {
        TxnOpResponse::Txn(inner) => assert!(!inner.succeeded()),
        other => panic!("expected a txn response, got {other:?}"),
    }
    assert_eq!(
        c.get("inner", None).await.unwrap().kvs()[0].value(),
        b"else"
    );

    // A txn's delete of a range and prev_kv.
    let del = Txn::new().and_then([TxnOp::delete(
        "obj",
        Some(DeleteOptions::new().with_prefix().with_prev_key()),
    )]);
    let resp = c.txn(del).await.unwrap();
    match &resp.op_responses()[0] {
        TxnOpResponse::Delete(d) => assert_eq!((d.deleted(), d.prev_kvs().len()), (2, 2)),
        other => panic!("expected a delete response, got {other:?}"),
    }
}

/// What etcd refuses in a txn before running it.
async fn txn_checks(server: &ServerProcess) {
    let mut c = client(server).await;
    let before = revision_of(c.get("k", None).await.unwrap().header());

    let twice = Txn::new().and_then([TxnOp::put("k", "1", None), TxnOp::put("k", "2", None)]);
    let err = status_of(c.txn(twice).await);
    assert_eq!(
        (err.code(), err.message()),
        (
            Code::InvalidArgument,
            "etcdserver: duplicate key given in txn request"
        )
    );

    let put_in_delete = Txn::new().and_then([
        TxnOp::delete("a", Some(DeleteOptions::new().with_range("c"))),
        TxnOp::put("b", "1", None),
    ]);
    assert_eq!(
        status_of(c.txn(put_in_delete).await).code(),
        Code::InvalidArgument
    );

    let too_many = Txn::new().and_then(
        (0..129)
            .map(|i| TxnOp::put(format!("k{i}"), "v", None))
            .collect::<Vec<_>>(),
    );
    let err = status_of(c.txn(too_many).await);
    assert_eq!(
        (err.code(), err.message()),
        (
            Code::InvalidArgument,
            "etcdserver: too many operations in txn request"
        )
    );

    let unknown_lease = Txn::new().and_then([TxnOp::put(
        "k",
        "v",
        Some(PutOptions::new().with_lease(0x7eadbeef)),
    )]);
    let err = status_of(c.txn(unknown_lease).await);
    assert_eq!(
        (err.code(), err.message()),
        (Code::NotFound, "etcdserver: requested lease not found")
    );

    // Nothing of a refused txn was applied.
    let after = c.get("k", None).await.unwrap();
    assert_eq!(
        (after.kvs().len(), revision_of(after.header())),
        (0, before)
    );
}

/// A watch from a past revision replays history in order, then follows live
/// changes with no gap and no duplicate; filters and prev_kv apply.
async fn watch_replays_history(server: &ServerProcess) {
    let mut c = client(server).await;
    let start = revision_of(c.put("w/a", "1", None).await.unwrap().header());
    c.put("w/b", "1", None).await.unwrap();
    c.put("other", "1", None).await.unwrap();
    c.put("w/a", "2", None).await.unwrap();
    c.delete("w/b", None).await.unwrap();

    let mut stream = c
        .watch(
            "w/",
            Some(
                WatchOptions::new()
                    .with_prefix()
                    .with_start_revision(start)
                    .with_prev_key(),
            ),
        )
        .await
        .unwrap();
    let created = next(&mut stream).await;
    assert!(created.created());

    let events = collect_events(&mut stream, 4).await;
    let expected = vec![
        (EventType::Put, "w/a".to_string(), "1".to_string(), start),
        (EventType::Put, "w/b".into(), "1".into(), start + 1),
        (EventType::Put, "w/a".into(), "2".into(), start + 3),
        (EventType::Delete, "w/b".into(), "".into(), start + 4),
    ];
    assert_eq!(events, expected);

    // Live changes follow, with prev_kv.
    c.put("w/a", "3", None).await.unwrap();
    let resp = next(&mut stream).await;
    let event = &resp.events()[0];
    assert_eq!(event.kv().unwrap().value(), b"3");
    assert_eq!(event.prev_kv().expect("prev_kv asked for").value(), b"2");

    // Filters: a watch that skips puts sees only the delete.
    let mut deletes_only = c
        .watch(
            "w/",
            Some(
                WatchOptions::new()
                    .with_prefix()
                    .with_start_revision(start)
                    .with_filters([WatchFilterType::NoPut]),
            ),
        )
        .await
        .unwrap();
    assert!(next(&mut deletes_only).await.created());
    let events = collect_events(&mut deletes_only, 1).await;
    assert_eq!(
        events,
        vec![(EventType::Delete, "w/b".into(), "".into(), start + 4)]
    );
}

/// Several watches on one stream get their own events, by watch id, and a
/// cancelled watch stops.
async fn watch_many_on_one_stream(server: &ServerProcess) {
    let mut c = client(server).await;
    let mut stream = c.watch("one", None).await.unwrap();
    let first = next(&mut stream).await;
    assert!(first.created());
    stream.watch("two", None).await.unwrap();
    let second = next(&mut stream).await;
    assert!(second.created());
    assert_ne!(first.watch_id(), second.watch_id());

    c.put("two", "2", None).await.unwrap();
    c.put("one", "1", None).await.unwrap();
    let a = next(&mut stream).await;
    let b = next(&mut stream).await;
    assert_eq!(
        (a.watch_id(), a.events()[0].kv().unwrap().key()),
        (second.watch_id(), &b"two"[..])
    );
    assert_eq!(
        (b.watch_id(), b.events()[0].kv().unwrap().key()),
        (first.watch_id(), &b"one"[..])
    );

    stream.cancel(first.watch_id()).await.unwrap();
    let cancelled = next(&mut stream).await;
    assert!(cancelled.canceled());
    assert_eq!(cancelled.watch_id(), first.watch_id());
    c.put("one", "again", None).await.unwrap();
    c.put("two", "again", None).await.unwrap();
    let resp = next(&mut stream).await;
    assert_eq!(
        resp.watch_id(),
        second.watch_id(),
        "only the remaining watch gets events"
    );
}

/// Compaction: old reads fail, the newest version of every live key stays
/// readable at the compaction revision, and a watch from before it is
/// cancelled with `compact_revision` set.
async fn watch_after_compaction(server: &ServerProcess) {
    let mut c = client(server).await;
    let r1 = revision_of(c.put("c/a", "1", None).await.unwrap().header());
    c.put("c/b", "1", None).await.unwrap();
    c.put("c/a", "2", None).await.unwrap();
    c.delete("c/b", None).await.unwrap();
    let compact_at = revision_of(c.put("c/z", "1", None).await.unwrap().header());
    let after = revision_of(c.put("c/a", "3", None).await.unwrap().header());

    c.compact(compact_at, None).await.unwrap();

    let err = status_of(
        c.get("c/a", Some(GetOptions::new().with_revision(r1)))
            .await,
    );
    assert_eq!(
        (err.code(), err.message()),
        (
            Code::OutOfRange,
            "etcdserver: mvcc: required revision has been compacted"
        )
    );
    // At the compaction revision itself, every live key's newest version is there.
    let at = c
        .get(
            "c/",
            Some(GetOptions::new().with_prefix().with_revision(compact_at)),
        )
        .await
        .unwrap();
    let seen: Vec<(&str, &str)> = at
        .kvs()
        .iter()
        .map(|kv| (kv.key_str().unwrap(), kv.value_str().unwrap()))
        .collect();
    assert_eq!(seen, vec![("c/a", "2"), ("c/z", "1")]);

    let again = status_of(c.compact(compact_at, None).await);
    assert_eq!(again.code(), Code::OutOfRange);
    let future = status_of(c.compact(after + 100, None).await);
    assert_eq!(
        (future.code(), future.message()),
        (
            Code::OutOfRange,
            "etcdserver: mvcc: required revision is a future revision"
        )
    );

    let mut stream = c
        .watch(
            "c/",
            Some(WatchOptions::new().with_prefix().with_start_revision(r1)),
        )
        .await
        .unwrap();
    let created = next(&mut stream).await;
    let cancelled = if created.compact_revision() != 0 {
        created
    } else {
        next(&mut stream).await
    };
    assert!(
        cancelled.canceled(),
        "a watch from a compacted revision is cancelled"
    );
    assert_eq!(cancelled.compact_revision(), compact_at);

    // From just after the compaction, history is whole.
    let mut stream = c
        .watch(
            "c/",
            Some(
                WatchOptions::new()
                    .with_prefix()
                    .with_start_revision(compact_at + 1),
            ),
        )
        .await
        .unwrap();
    assert!(next(&mut stream).await.created());
    let events = collect_events(&mut stream, 1).await;
    assert_eq!(
        events,
        vec![(EventType::Put, "c/a".into(), "3".into(), after)]
    );
}

/// Idle watches that asked for progress get notified; a progress request is
/// answered with the current revision.
async fn watch_progress(server: &ServerProcess) {
    let mut c = client(server).await;
    let current = revision_of(c.put("p", "1", None).await.unwrap().header());
    let mut stream = c
        .watch("p", Some(WatchOptions::new().with_progress_notify()))
        .await
        .unwrap();
    let created = next(&mut stream).await;
    assert!(created.created());

    // Nothing happens to the key; a notification (no events) comes within a few intervals.
    let notification = next(&mut stream).await;
    assert!(notification.events().is_empty());
    assert_eq!(notification.watch_id(), created.watch_id());
    assert!(revision_of(notification.header()) >= current);

    c.put("elsewhere", "x", None).await.unwrap();
    stream.request_progress().await.unwrap();
    let progress = loop {
        let resp = next(&mut stream).await;
        if revision_of(resp.header()) > current {
            break resp;
        }
    };
    assert!(progress.events().is_empty());
    assert_eq!(revision_of(progress.header()), current + 1);
}

/// Revoking a lease deletes its keys in one revision; an unrenewed lease
/// expires and its keys go; keep-alives renew.
async fn lease_revoke_and_expiry(server: &ServerProcess) {
    let mut c = client(server).await;
    let lease = c.lease_grant(60, None).await.unwrap();
    assert_eq!(lease.ttl(), 60);
    let id = lease.id();
    c.put("l/a", "1", Some(PutOptions::new().with_lease(id)))
        .await
        .unwrap();
    c.put("l/b", "1", Some(PutOptions::new().with_lease(id)))
        .await
        .unwrap();
    assert_eq!(c.get("l/a", None).await.unwrap().kvs()[0].lease(), id);

    let ttl = c
        .lease_time_to_live(id, Some(LeaseTimeToLiveOptions::new().with_keys()))
        .await
        .unwrap();
    assert_eq!(ttl.granted_ttl(), 60);
    assert!(ttl.ttl() > 50 && ttl.ttl() <= 60, "remaining {}", ttl.ttl());
    let mut keys: Vec<Vec<u8>> = ttl.keys().to_vec();
    keys.sort();
    assert_eq!(keys, vec![b"l/a".to_vec(), b"l/b".to_vec()]);

    let (mut keeper, mut replies) = c.lease_keep_alive(id).await.unwrap();
    keeper.keep_alive().await.unwrap();
    let reply = replies
        .message()
        .await
        .unwrap()
        .expect("a keep-alive reply");
    assert_eq!((reply.id(), reply.ttl()), (id, 60));

    let listed: HashSet<i64> = c
        .leases()
        .await
        .unwrap()
        .leases()
        .iter()
        .map(|l| l.id())
        .collect();
    assert!(listed.contains(&id));

    let mut watch = c
        .watch("l/", Some(WatchOptions::new().with_prefix()))
        .await
        .unwrap();
    assert!(next(&mut watch).await.created());
    let revoked_at = revision_of(c.lease_revoke(id).await.unwrap().header());
    let events = collect_events(&mut watch, 2).await;
    assert!(
        events
            .iter()
            .all(|(t, _, _, rev)| *t == EventType::Delete && *rev == revoked_at),
        "{events:?}"
    );
    assert!(
        c.get("l/", Some(GetOptions::new().with_prefix()))
            .await
            .unwrap()
            .kvs()
            .is_empty()
    );
    assert_eq!(c.lease_time_to_live(id, None).await.unwrap().ttl(), -1);
    let err = status_of(c.lease_revoke(id).await);
    assert_eq!(
        (err.code(), err.message()),
        (Code::NotFound, "etcdserver: requested lease not found")
    );

    // An unrenewed lease expires on its own and takes its key with it.
    let short = c
        .lease_grant(3, Some(LeaseGrantOptions::new().with_id(0x5eed)))
        .await
        .unwrap();
    assert_eq!(short.id(), 0x5eed);
    c.put(
        "l/short",
        "1",
        Some(PutOptions::new().with_lease(short.id())),
    )
    .await
    .unwrap();
    let granted = Instant::now();
    let mut gone = false;
    while granted.elapsed() < Duration::from_secs(15) {
        if c.get("l/short", None).await.unwrap().kvs().is_empty() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(gone, "the key of an expired lease is deleted");
    assert!(
        granted.elapsed() >= Duration::from_secs(2),
        "not before the TTL: {:?}",
        granted.elapsed()
    );
    let events = collect_events(&mut watch, 2).await;
    let kinds: Vec<(EventType, &str)> =
        events.iter().map(|(t, k, _, _)| (*t, k.as_str())).collect();
    assert_eq!(
        kinds,
        vec![(EventType::Put, "l/short"), (EventType::Delete, "l/short")]
    );

    // Keep-alive of a lease that is gone answers TTL 0, which the client
    // (it sends the first keep-alive itself) reports as "lease not found".
    let gone = c.lease_keep_alive(short.id()).await;
    assert!(
        matches!(gone, Err(etcd_client::Error::LeaseKeepAliveError(_))),
        "{gone:?}"
    );

    let dup = c
        .lease_grant(30, Some(LeaseGrantOptions::new().with_id(0x7777)))
        .await
        .unwrap();
    let err = status_of(
        c.lease_grant(30, Some(LeaseGrantOptions::new().with_id(dup.id())))
            .await,
    );
    assert_eq!(
        (err.code(), err.message()),
        (Code::FailedPrecondition, "etcdserver: lease already exists")
    );
}

/// Many clients increment one counter with compare-and-swap: every
/// successful swap is its own revision and no increment is lost.
async fn concurrent_cas_writers(server: &ServerProcess) {
    const WRITERS: usize = 8;
    const INCREMENTS: usize = 25;
    let mut c = client(server).await;
    c.put("counter", "0", None).await.unwrap();
    let winning_revisions = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for _ in 0..WRITERS {
        let mut c = client(server).await;
        let winning_revisions = winning_revisions.clone();
        tasks.push(tokio::spawn(async move {
            let mut done = 0;
            let mut conflicts = 0;
            while done < INCREMENTS {
                let got = c.get("counter", None).await.unwrap();
                let kv = &got.kvs()[0];
                let value: u64 = kv.value_str().unwrap().parse().unwrap();
                let txn = Txn::new()
                    .when([Compare::mod_revision(
                        "counter",
                        CompareOp::Equal,
                        kv.mod_revision(),
                    )])
                    .and_then([TxnOp::put("counter", (value + 1).to_string(), None)]);
                let resp = c.txn(txn).await.unwrap();
                if resp.succeeded() {
                    done += 1;
                    winning_revisions
                        .lock()
                        .unwrap()
                        .push(revision_of(resp.header()));
                } else {
                    conflicts += 1;
                }
            }
            conflicts
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let total = WRITERS * INCREMENTS;
    let kv = c.get("counter", None).await.unwrap().kvs()[0].clone();
    assert_eq!(kv.value_str().unwrap(), total.to_string(), "no lost update");
    assert_eq!(kv.version() as usize, total + 1);
    let revisions = winning_revisions.lock().unwrap().clone();
    let unique: HashSet<i64> = revisions.iter().copied().collect();
    assert_eq!(unique.len(), total, "exactly one winner per revision");
}

/// Errors come with etcd's gRPC codes and messages.
async fn errors_like_etcd(server: &ServerProcess) {
    let mut c = client(server).await;
    let big = vec![b'x'; 1_600_000]; // over 1.5 MiB, under the gRPC limit
    let err = status_of(c.put("big", big, None).await);
    assert_eq!(
        (err.code(), err.message()),
        (Code::InvalidArgument, "etcdserver: request is too large")
    );
    assert!(c.get("big", None).await.unwrap().kvs().is_empty());

    let err = status_of(
        c.put("k", "v", Some(PutOptions::new().with_lease(0x1234)))
            .await,
    );
    assert_eq!(
        (err.code(), err.message()),
        (Code::NotFound, "etcdserver: requested lease not found")
    );

    let err = status_of(c.put("", "v", None).await);
    assert_eq!(
        (err.code(), err.message()),
        (Code::InvalidArgument, "etcdserver: key is not provided")
    );
    let err = status_of(c.get("", None).await);
    assert_eq!(err.code(), Code::InvalidArgument);

    let err = status_of(
        c.put(
            "k",
            "v",
            Some(PutOptions::new().with_ignore_lease().with_lease(5)),
        )
        .await,
    );
    assert_eq!(
        (err.code(), err.message()),
        (Code::InvalidArgument, "etcdserver: lease is provided")
    );

    let err = status_of(c.lease_grant(9_000_000_001, None).await);
    assert_eq!(
        (err.code(), err.message()),
        (Code::OutOfRange, "etcdserver: too large lease TTL")
    );

    // The store still works after all that.
    c.put("k", "v", None).await.unwrap();
    assert_eq!(c.get("k", None).await.unwrap().kvs()[0].value(), b"v");
}
