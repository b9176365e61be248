//! `wait TYPE/NAME… --for=condition=C[=V] | --for=delete |
//! --for=jsonpath='{…}'=V [--timeout=30s]`: polls each object until the
//! condition holds, then prints `KIND/NAME condition met`, as kubectl does;
//! kubectl's timeout error otherwise. A condition whose
//! `observedGeneration` is behind the object's `generation` does not count
//! yet (it describes an older spec).

use std::time::{Duration, Instant};

use serde_json::Value;

use super::targets::parse;
use crate::error::{CtlError, Result, usage};
use crate::print::jsonpath;
use crate::session::{Session, with_query};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// TYPE NAME… or TYPE/NAME…
    #[arg(add = clap_complete::ArgValueCompleter::new(crate::cmd::completion::resources))]
    pub resources: Vec<String>,
    /// condition=NAME[=VALUE], delete, or jsonpath='{EXPR}'=VALUE.
    #[arg(long = "for")]
    pub for_what: String,
    /// How long to wait (0: check once).
    #[arg(long, default_value = "30s")]
    pub timeout: String,
    /// Selector (label query) to filter on.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
}

/// What to wait for.
#[derive(Debug, Clone, PartialEq)]
pub enum Goal {
    Delete,
    Condition { name: String, value: String },
    JsonPath { path: String, value: String },
}

pub fn parse_goal(text: &str) -> Result<Goal> {
    if text == "delete" {
        return Ok(Goal::Delete);
    }
    if let Some(rest) = text.strip_prefix("condition=") {
        let (name, value) = rest.split_once('=').unwrap_or((rest, "true"));
        return Ok(Goal::Condition {
            name: name.to_string(),
            value: value.to_string(),
        });
    }
    if let Some(rest) = text.strip_prefix("jsonpath=") {
        // The value follows the closing brace: '{.status.phase}=Running'.
        let (path, value) = match rest.rfind("}=") {
            Some(i) => (&rest[..=i], &rest[i + 2..]),
            None => {
                return Err(usage(
                    "jsonpath wait format must be --for=jsonpath='{.status.readyReplicas}'=3",
                ));
            }
        };
        jsonpath::parse_path(&jsonpath::relaxed(path)).map_err(usage)?;
        return Ok(Goal::JsonPath {
            path: path.to_string(),
            value: value.to_string(),
        });
    }
    Err(usage(format!("unrecognized condition: \"{text}\"")))
}

/// Whether `object` meets a condition or jsonpath goal.
pub fn met(goal: &Goal, object: &Value) -> bool {
    match goal {
        Goal::Delete => false,
        Goal::Condition { name, value } => {
            let generation = object["metadata"]["generation"].as_i64();
            object["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|c| {
                    c["type"]
                        .as_str()
                        .is_some_and(|t| t.eq_ignore_ascii_case(name))
                })
                .any(|c| {
                    let current = match (c["observedGeneration"].as_i64(), generation) {
                        (Some(seen), Some(g)) => seen >= g,
                        _ => true,
                    };
                    current
                        && c["status"]
                            .as_str()
                            .is_some_and(|s| s.eq_ignore_ascii_case(value))
                })
        }
        Goal::JsonPath { path, value } => {
            let Ok(steps) = jsonpath::parse_path(&jsonpath::relaxed(path)) else {
                return false;
            };
            let found = jsonpath::eval(&steps, object);
            !found.is_empty() && found.iter().all(|v| jsonpath::text(v) == *value)
        }
    }
}

pub async fn run(session: &Session, args: Args) -> Result<()> {
    let goal = parse_goal(&args.for_what)?;
    let timeout = humantime::parse_duration(&args.timeout).map_err(|e| {
        usage(format!(
            "invalid argument \"{}\" for \"--timeout\" flag: {e}",
            args.timeout
        ))
    })?;
    let (targets, _) = parse(session, &args.resources)?;
    let deadline = Instant::now() + timeout;
    for t in &targets {
        let path = t.resource.path(session.ns_for(&t.resource, false));
        let mut names = t.names.clone();
        if names.is_empty() {
            let uri = with_query(&path, &[("labelSelector", args.selector.as_deref())]);
            let list = session.get_json(&uri).await?;
            names = list["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|o| o["metadata"]["name"].as_str().map(str::to_string))
                .collect();
            if names.is_empty() {
                return Err(usage("no matching resources found"));
            }
        }
        for name in &names {
            let mut first = true;
            loop {
                let got = session.get_json(&format!("{path}/{name}")).await;
                let done = match (&goal, got) {
                    // Gone before we looked: kubectl found nothing to wait
                    // for and says nothing.
                    (Goal::Delete, Err(CtlError::Server(s))) if s.code == 404 && first => break,
                    (Goal::Delete, Err(CtlError::Server(s))) if s.code == 404 => true,
                    (_, Err(e)) => return Err(e),
                    (goal, Ok(object)) => met(goal, &object),
                };
                if done {
                    println!("{}/{name} condition met", t.resource.kind_group());
                    break;
                }
                first = false;
                if Instant::now() >= deadline {
                    return Err(usage(format!(
                        "timed out waiting for the condition on {}/{name}",
                        t.resource.plural
                    )));
                }
                tokio::time::sleep(Duration::from_millis(250).min(deadline - Instant::now())).await;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn goals_parse_as_kubectl_reads_them() {
        assert_eq!(parse_goal("delete").unwrap(), Goal::Delete);
        assert_eq!(
            parse_goal("condition=Available").unwrap(),
            Goal::Condition {
                name: "Available".into(),
                value: "true".into()
            }
        );
        assert_eq!(
            parse_goal("condition=Ready=false").unwrap(),
            Goal::Condition {
                name: "Ready".into(),
                value: "false".into()
            }
        );
        assert_eq!(
            parse_goal("jsonpath={.status.phase}=Running").unwrap(),
            Goal::JsonPath {
                path: "{.status.phase}".into(),
                value: "Running".into()
            }
        );
        assert!(parse_goal("jsonpath={.status.phase}").is_err());
        assert_eq!(
            parse_goal("ready").unwrap_err().to_string(),
            "error: unrecognized condition: \"ready\""
        );
    }

    #[test]
    fn conditions_and_paths_are_met_or_not() {
        let d = json!({"metadata": {"generation": 3},
                       "status": {"readyReplicas": 2, "conditions": [
                           {"type": "Available", "status": "True", "observedGeneration": 3},
                           {"type": "Progressing", "status": "True", "observedGeneration": 2}]}});
        let cond = |n: &str, v: &str| Goal::Condition {
            name: n.into(),
            value: v.into(),
        };
        assert!(met(&cond("available", "true"), &d));
        assert!(!met(&cond("Available", "False"), &d));
        assert!(
            !met(&cond("Progressing", "True"), &d),
            "an older generation's condition"
        );
        assert!(!met(&cond("Missing", "True"), &d));
        let jp = |p: &str, v: &str| Goal::JsonPath {
            path: p.into(),
            value: v.into(),
        };
        assert!(met(&jp("{.status.readyReplicas}", "2"), &d));
        assert!(!met(&jp("{.status.readyReplicas}", "3"), &d));
        assert!(!met(&jp("{.status.nothing}", ""), &d));
    }
}
