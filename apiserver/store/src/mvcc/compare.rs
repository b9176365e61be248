//! Txn compares: does a key (or every key of a range) satisfy a condition?

use std::cmp::Ordering;

use skiff_proto::etcd::{
    Compare, KeyValue,
    compare::{CompareResult, CompareTarget, TargetUnion},
};

/// Whether `kvs` (the live keys the compare names, possibly none) satisfy it.
///
/// As in etcd, a compare on a missing key sees a key-value of zeros (version
/// 0, revisions 0, lease 0), except that a VALUE compare on a missing key is
/// always false. A compare over a range must hold for every key in it.
pub(crate) fn holds(cmp: &Compare, kvs: &[KeyValue]) -> bool {
    let target = CompareTarget::try_from(cmp.target);
    if kvs.is_empty() {
        if matches!(target, Ok(CompareTarget::Value)) {
            return false;
        }
        return holds_for(cmp, &KeyValue::default());
    }
    kvs.iter().all(|kv| holds_for(cmp, kv))
}

fn holds_for(cmp: &Compare, kv: &KeyValue) -> bool {
    let number = |want: fn(&TargetUnion) -> Option<i64>| {
        cmp.target_union.as_ref().and_then(want).unwrap_or(0)
    };
    let ordering = match CompareTarget::try_from(cmp.target) {
        Ok(CompareTarget::Version) => kv.version.cmp(&number(|u| {
            if let TargetUnion::Version(v) = u {
                Some(*v)
            } else {
                None
            }
        })),
        Ok(CompareTarget::Create) => kv.create_revision.cmp(&number(|u| {
            if let TargetUnion::CreateRevision(v) = u {
                Some(*v)
            } else {
                None
            }
        })),
        Ok(CompareTarget::Mod) => kv.mod_revision.cmp(&number(|u| {
            if let TargetUnion::ModRevision(v) = u {
                Some(*v)
            } else {
                None
            }
        })),
        Ok(CompareTarget::Lease) => kv.lease.cmp(&number(|u| {
            if let TargetUnion::Lease(v) = u {
                Some(*v)
            } else {
                None
            }
        })),
        Ok(CompareTarget::Value) => {
            let want = match &cmp.target_union {
                Some(TargetUnion::Value(v)) => v.as_slice(),
                _ => &[],
            };
            kv.value.as_slice().cmp(want)
        }
        Err(_) => return false,
    };
    match CompareResult::try_from(cmp.result) {
        Ok(CompareResult::Equal) => ordering == Ordering::Equal,
        Ok(CompareResult::Greater) => ordering == Ordering::Greater,
        Ok(CompareResult::Less) => ordering == Ordering::Less,
        Ok(CompareResult::NotEqual) => ordering != Ordering::Equal,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(target: CompareTarget, result: CompareResult, union: TargetUnion) -> Compare {
        Compare {
            key: b"k".to_vec(),
            target: target as i32,
            result: result as i32,
            target_union: Some(union),
            range_end: vec![],
        }
    }

    #[test]
    fn table() {
        let kv = KeyValue {
            key: b"k".to_vec(),
            value: b"b".to_vec(),
            version: 2,
            create_revision: 5,
            mod_revision: 9,
            lease: 0,
        };
        use CompareResult::*;
        use CompareTarget as T;
        let cases = [
            (cmp(T::Version, Equal, TargetUnion::Version(2)), true),
            (cmp(T::Version, Greater, TargetUnion::Version(1)), true),
            (cmp(T::Version, Less, TargetUnion::Version(2)), false),
            (cmp(T::Create, Equal, TargetUnion::CreateRevision(5)), true),
            (cmp(T::Mod, NotEqual, TargetUnion::ModRevision(9)), false),
            (cmp(T::Mod, Less, TargetUnion::ModRevision(10)), true),
            (
                cmp(T::Value, Equal, TargetUnion::Value(b"b".to_vec())),
                true,
            ),
            (
                cmp(T::Value, Greater, TargetUnion::Value(b"a".to_vec())),
                true,
            ),
            (
                cmp(T::Value, Less, TargetUnion::Value(b"a".to_vec())),
                false,
            ),
            (cmp(T::Lease, Equal, TargetUnion::Lease(0)), true),
            // A union of the wrong kind compares against zero, like etcd.
            (
                cmp(T::Version, Greater, TargetUnion::ModRevision(100)),
                true,
            ),
        ];
        for (c, want) in cases {
            assert_eq!(holds(&c, std::slice::from_ref(&kv)), want, "{c:?}");
        }
    }

    #[test]
    fn missing_key() {
        use CompareResult::*;
        use CompareTarget as T;
        // "create the key only if it does not exist" is the classic use.
        assert!(holds(
            &cmp(T::Create, Equal, TargetUnion::CreateRevision(0)),
            &[]
        ));
        assert!(holds(&cmp(T::Version, Equal, TargetUnion::Version(0)), &[]));
        assert!(!holds(
            &cmp(T::Value, Equal, TargetUnion::Value(vec![])),
            &[]
        ));
        assert!(!holds(
            &cmp(T::Value, NotEqual, TargetUnion::Value(b"x".to_vec())),
            &[]
        ));
    }

    #[test]
    fn range_needs_every_key() {
        use CompareResult::*;
        let a = KeyValue {
            key: b"a".to_vec(),
            version: 1,
            ..Default::default()
        };
        let b = KeyValue {
            key: b"b".to_vec(),
            version: 3,
            ..Default::default()
        };
        let c = cmp(CompareTarget::Version, Greater, TargetUnion::Version(0));
        assert!(holds(&c, &[a.clone(), b.clone()]));
        let c = cmp(CompareTarget::Version, Equal, TargetUnion::Version(1));
        assert!(!holds(&c, &[a, b]));
    }
}
