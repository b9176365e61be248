//! Namespaces: the `kubernetes` finalizer, phase, and table.

use serde_json::{Value, json};

use crate::object::{default, str_at};
use crate::registry::Strategy;
use crate::registry::table::{self, Column, col};

pub struct NamespaceStrategy;

impl Strategy for NamespaceStrategy {
    fn default(&self, obj: &mut Value) {
        // The namespace controller removes this finalizer once every object
        // in the namespace is gone; until then the namespace stays Terminating.
        default(obj, &["spec", "finalizers"], json!(["kubernetes"]));
        // Every namespace carries its own name as a label (upstream since 1.21).
        let name = crate::object::name(obj).to_string();
        if !name.is_empty() {
            crate::object::set(
                obj,
                &["metadata", "labels", "kubernetes.io/metadata.name"],
                json!(name),
            );
        }
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        obj["status"] = json!({"phase": "Active"});
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            table::name_column(),
            col("Status", "The status of the namespace"),
            table::age_column(),
        ]
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        vec![
            table::name(obj),
            json!(str_at(obj, &["status", "phase"]).unwrap_or("Active")),
            table::age(obj),
        ]
    }

    fn field(&self, obj: &Value, path: &str) -> Option<String> {
        (path == "status.phase")
            .then(|| str_at(obj, &["status", "phase"]).unwrap_or("").to_string())
    }
}
