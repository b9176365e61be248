//! The storage of one resource: [`Storage`] with the resource's conversion
//! to and from its stored form applied on every read and write.
//!
//! Most resources are stored as they are served and pass straight through;
//! events.k8s.io/v1 Events are stored as core/v1 Events (see
//! `registry::events`), so both groups see the same objects.

use serde_json::Value;

use super::{Page, Storage, StorageResult, Stored};
use crate::registry::Resource;

#[derive(Clone, Copy)]
pub struct ResourceStore<'a> {
    pub storage: &'a Storage,
    pub resource: &'a Resource,
}

impl ResourceStore<'_> {
    fn served(&self, mut stored: Stored) -> Stored {
        if self.resource.stored_as.is_some() {
            stored.value = self.resource.served(stored.value);
        }
        stored
    }

    pub async fn get(&self, key: &str) -> StorageResult<Option<Stored>> {
        Ok(self.storage.get(key).await?.map(|s| self.served(s)))
    }

    pub async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
        revision: Option<i64>,
    ) -> StorageResult<Page> {
        let mut page = self
            .storage
            .list(prefix, start_after, limit, revision)
            .await?;
        if self.resource.stored_as.is_some() {
            page.items = page.items.into_iter().map(|s| self.served(s)).collect();
        }
        Ok(page)
    }

    pub async fn create(
        &self,
        key: &str,
        value: &Value,
        claims: &[String],
    ) -> StorageResult<Stored> {
        let stored = self
            .storage
            .create(key, &self.resource.stored(value), claims)
            .await?;
        Ok(self.served(stored))
    }

    pub async fn update(
        &self,
        key: &str,
        value: &Value,
        expected: i64,
        claims: &[String],
        released: &[String],
    ) -> StorageResult<Stored> {
        let stored = self
            .storage
            .update(
                key,
                &self.resource.stored(value),
                expected,
                claims,
                released,
            )
            .await?;
        Ok(self.served(stored))
    }

    pub async fn delete(
        &self,
        key: &str,
        expected: Option<i64>,
        released: &[String],
    ) -> StorageResult<Stored> {
        Ok(self.served(self.storage.delete(key, expected, released).await?))
    }
}
