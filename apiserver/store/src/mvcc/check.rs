//! Checks a request can fail before it touches the store: empty keys, options
//! that contradict each other, too many txn operations, and a txn that would
//! write one key twice. etcd makes the same checks in its gRPC layer, with the
//! same errors; doing them here keeps bad requests out of the writer's batch.

use skiff_proto::etcd::{
    DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest,
    range_request::{SortOrder, SortTarget},
    request_op::Request,
};

use super::keys::KeyRange;
use crate::error::{Result, StoreError};

pub(crate) fn check_range(req: &RangeRequest) -> Result<()> {
    if req.key.is_empty() {
        return Err(StoreError::EmptyKey);
    }
    SortOrder::try_from(req.sort_order).map_err(|_| StoreError::InvalidSortOption)?;
    SortTarget::try_from(req.sort_target).map_err(|_| StoreError::InvalidSortOption)?;
    Ok(())
}

pub(crate) fn check_put(req: &PutRequest) -> Result<()> {
    if req.key.is_empty() {
        return Err(StoreError::EmptyKey);
    }
    if req.ignore_value && !req.value.is_empty() {
        return Err(StoreError::ValueProvided);
    }
    if req.ignore_lease && req.lease != 0 {
        return Err(StoreError::LeaseProvided);
    }
    Ok(())
}

pub(crate) fn check_delete(req: &DeleteRangeRequest) -> Result<()> {
    if req.key.is_empty() {
        return Err(StoreError::EmptyKey);
    }
    Ok(())
}

/// Checks a txn and, recursively, the txns nested in it. `max_ops` bounds the
/// compares and the operations of each branch (etcd's `--max-txn-ops`).
pub(crate) fn check_txn(req: &TxnRequest, max_ops: usize) -> Result<()> {
    check_txn_ops(req, max_ops)?;
    check_writes(&req.success)?;
    check_writes(&req.failure)?;
    Ok(())
}

fn check_txn_ops(req: &TxnRequest, max_ops: usize) -> Result<()> {
    let widest = req
        .compare
        .len()
        .max(req.success.len())
        .max(req.failure.len());
    if widest > max_ops {
        return Err(StoreError::TooManyOps);
    }
    if req.compare.iter().any(|c| c.key.is_empty()) {
        return Err(StoreError::EmptyKey);
    }
    for op in req.success.iter().chain(&req.failure) {
        match &op.request {
            Some(Request::RequestRange(r)) => check_range(r)?,
            Some(Request::RequestPut(r)) => check_put(r)?,
            Some(Request::RequestDeleteRange(r)) => check_delete(r)?,
            Some(Request::RequestTxn(r)) => check_txn_ops(r, max_ops - widest)?,
            None => {}
        }
    }
    Ok(())
}

/// What one list of operations writes: the keys it puts and the ranges it
/// deletes, including what its nested txns may write.
#[derive(Default)]
struct Writes {
    puts: Vec<Vec<u8>>,
    deletes: Vec<KeyRange>,
}

impl Writes {
    fn deletes_key(&self, key: &[u8]) -> bool {
        self.deletes.iter().any(|range| range.contains(key))
    }
}

/// A txn may not put a key twice, nor put a key it also deletes, in any path
/// it can take. The two branches of a nested txn exclude each other, so the
/// same key may be put in both.
fn check_writes(ops: &[RequestOp]) -> Result<Writes> {
    let mut writes = Writes::default();
    for op in ops {
        if let Some(Request::RequestDeleteRange(d)) = &op.request {
            writes.deletes.push(KeyRange::new(&d.key, &d.range_end));
        }
    }
    for op in ops {
        let Some(Request::RequestTxn(nested)) = &op.request else {
            continue;
        };
        let then = check_writes(&nested.success)?;
        let otherwise = check_writes(&nested.failure)?;
        let mut added: Vec<Vec<u8>> = Vec::new();
        for key in &then.puts {
            if writes.puts.contains(key) || writes.deletes_key(key) {
                return Err(StoreError::DuplicateKey);
            }
            added.push(key.clone());
        }
        for key in &otherwise.puts {
            let only_in_other_branch = then.puts.contains(key);
            if (writes.puts.contains(key) && !only_in_other_branch) || writes.deletes_key(key) {
                return Err(StoreError::DuplicateKey);
            }
            if !only_in_other_branch {
                added.push(key.clone());
            }
        }
        writes.puts.extend(added);
        writes.deletes.extend(then.deletes);
        writes.deletes.extend(otherwise.deletes);
    }
    for op in ops {
        let Some(Request::RequestPut(p)) = &op.request else {
            continue;
        };
        if writes.puts.contains(&p.key) || writes.deletes_key(&p.key) {
            return Err(StoreError::DuplicateKey);
        }
        writes.puts.push(p.key.clone());
    }
    Ok(writes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: &str) -> RequestOp {
        RequestOp {
            request: Some(Request::RequestPut(PutRequest {
                key: key.into(),
                ..Default::default()
            })),
        }
    }
    fn del(key: &str, end: &str) -> RequestOp {
        RequestOp {
            request: Some(Request::RequestDeleteRange(DeleteRangeRequest {
                key: key.into(),
                range_end: end.into(),
                ..Default::default()
            })),
        }
    }
    fn nested(success: Vec<RequestOp>, failure: Vec<RequestOp>) -> RequestOp {
        RequestOp {
            request: Some(Request::RequestTxn(TxnRequest {
                compare: vec![],
                success,
                failure,
            })),
        }
    }
    fn txn(success: Vec<RequestOp>) -> TxnRequest {
        TxnRequest {
            compare: vec![],
            success,
            failure: vec![],
        }
    }

    #[test]
    fn duplicate_writes() {
        let cases: Vec<(&str, TxnRequest, bool)> = vec![
            ("two keys", txn(vec![put("a"), put("b")]), true),
            ("same key twice", txn(vec![put("a"), put("a")]), false),
            (
                "put inside a deleted range",
                txn(vec![del("a", "c"), put("b")]),
                false,
            ),
            (
                "put beside a deleted range",
                txn(vec![del("a", "c"), put("c")]),
                true,
            ),
            (
                "overlapping deletes",
                txn(vec![del("a", "c"), del("b", "d")]),
                true,
            ),
            (
                "same key in both nested branches",
                txn(vec![nested(vec![put("a")], vec![put("a")])]),
                true,
            ),
            (
                "nested put of an outer key",
                txn(vec![put("a"), nested(vec![put("a")], vec![])]),
                false,
            ),
            (
                "nested else put of an outer key",
                txn(vec![put("a"), nested(vec![], vec![put("a")])]),
                false,
            ),
            (
                "outer put into a nested delete",
                txn(vec![put("b"), nested(vec![del("a", "c")], vec![])]),
                false,
            ),
        ];
        for (name, req, ok) in cases {
            assert_eq!(check_txn(&req, 128).is_ok(), ok, "{name}");
            if !ok {
                assert!(
                    matches!(check_txn(&req, 128), Err(StoreError::DuplicateKey)),
                    "{name}"
                );
            }
        }
    }

    #[test]
    fn too_many_ops() {
        let req = txn((0..129).map(|i| put(&format!("k{i}"))).collect());
        assert!(matches!(check_txn(&req, 128), Err(StoreError::TooManyOps)));
        let req = txn((0..128).map(|i| put(&format!("k{i}"))).collect());
        assert!(check_txn(&req, 128).is_ok());
    }

    #[test]
    fn put_options() {
        let bad = PutRequest {
            key: b"k".to_vec(),
            value: b"v".to_vec(),
            ignore_value: true,
            ..Default::default()
        };
        assert!(matches!(check_put(&bad), Err(StoreError::ValueProvided)));
        let bad = PutRequest {
            key: b"k".to_vec(),
            lease: 5,
            ignore_lease: true,
            ..Default::default()
        };
        assert!(matches!(check_put(&bad), Err(StoreError::LeaseProvided)));
        assert!(matches!(
            check_put(&PutRequest::default()),
            Err(StoreError::EmptyKey)
        ));
    }
}
