//! What the kubelet's integration tests share.

use std::time::{Duration, Instant};

/// Polls `check` every 100 ms until it gives a value; fails the test with
/// `what` after `limit`.
pub async fn wait_within<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// [`wait_within`] 30 s.
#[allow(dead_code)] // not every test file waits without a limit of its own
pub async fn wait_for<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    wait_within(what, Duration::from_secs(30), check).await
}
