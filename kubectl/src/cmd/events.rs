//! `events [--for TYPE/NAME] [--types Normal,Warning] [-A] [-w]`: the
//! cluster's core/v1 Events, oldest first, as `kubectl events` lists them:
//! `LAST SEEN  TYPE  REASON  OBJECT  MESSAGE`, a repeated event as
//! `5s (x3 over 2m)`. With `-w` the list, then each new or updated event
//! as it arrives — a class can watch the controllers decide.

use futures::{AsyncBufReadExt, TryStreamExt};
use serde_json::Value;

use super::describe::events::interval;
use crate::error::{Result, usage};
use crate::print::tabwriter;
use crate::session::{Session, with_query};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only the events about this object (TYPE/NAME).
    #[arg(long = "for")]
    pub for_object: Option<String>,
    /// Only events of these types (Normal, Warning), comma-separated.
    #[arg(long)]
    pub types: Option<String>,
    /// Events of every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// After listing, watch for new events.
    #[arg(short = 'w', long)]
    pub watch: bool,
    /// Without headers.
    #[arg(long)]
    pub no_headers: bool,
}

/// When an event last happened (kubectl's sort key).
pub fn last_time(e: &Value) -> String {
    let t = if e["series"].is_object() {
        &e["series"]["lastObservedTime"]
    } else if e["lastTimestamp"].is_string() {
        &e["lastTimestamp"]
    } else {
        &e["eventTime"]
    };
    // RFC 3339 in UTC sorts as text; microseconds shorter than seconds are padded.
    t.as_str()
        .and_then(|s| s.parse::<jiff::Timestamp>().ok())
        .map(|t| format!("{:020}", t.as_nanosecond()))
        .unwrap_or_default()
}

/// One table row.
pub fn row(e: &Value, now: jiff::Timestamp, all_namespaces: bool) -> Vec<String> {
    let mut row = Vec::new();
    if all_namespaces {
        row.push(
            e["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
    }
    let o = &e["involvedObject"];
    row.extend([
        interval(e, now),
        e["type"].as_str().unwrap_or_default().to_string(),
        e["reason"].as_str().unwrap_or_default().to_string(),
        format!(
            "{}/{}",
            o["kind"].as_str().unwrap_or_default(),
            o["name"].as_str().unwrap_or_default()
        ),
        e["message"].as_str().unwrap_or_default().trim().to_string(),
    ]);
    row
}

fn header(all_namespaces: bool) -> Vec<String> {
    let mut h = Vec::new();
    if all_namespaces {
        h.push("NAMESPACE".to_string());
    }
    h.extend(["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"].map(String::from));
    h
}

pub async fn run(session: &Session, args: Args) -> Result<()> {
    let ns = session.namespace().to_string();
    let base = if args.all_namespaces {
        "/api/v1/events".to_string()
    } else {
        format!("/api/v1/namespaces/{ns}/events")
    };
    let field = match &args.for_object {
        Some(f) => {
            let (typed, name) = f.split_once('/').ok_or_else(|| {
                usage(format!("--for must be in resource/name form, not \"{f}\""))
            })?;
            let r = session.catalog.resolve(typed)?;
            Some(format!(
                "involvedObject.kind={},involvedObject.name={name}",
                r.kind
            ))
        }
        None => None,
    };
    let types: Option<Vec<String>> = args
        .types
        .as_ref()
        .map(|t| t.split(',').map(|s| s.trim().to_string()).collect());
    let wanted = |e: &Value| {
        types.as_ref().is_none_or(|ts| {
            ts.iter().any(|t| {
                e["type"]
                    .as_str()
                    .is_some_and(|et| et.eq_ignore_ascii_case(t))
            })
        })
    };
    let list = session
        .get_json(&with_query(&base, &[("fieldSelector", field.as_deref())]))
        .await?;
    let mut items: Vec<Value> = list["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| wanted(e))
        .collect();
    items.sort_by_key(last_time);
    let now = jiff::Timestamp::now();
    let mut table: Vec<Vec<String>> = Vec::new();
    if !args.no_headers && !items.is_empty() {
        table.push(header(args.all_namespaces));
    }
    table.extend(items.iter().map(|e| row(e, now, args.all_namespaces)));
    if items.is_empty() && !args.watch {
        if args.all_namespaces {
            eprintln!("No events found.");
        } else {
            eprintln!("No events found in {ns} namespace.");
        }
        return Ok(());
    }
    print!("{}", tabwriter::render(&table));
    if !args.watch {
        return Ok(());
    }
    // -w: new and changed events, one line each, from the list's version on.
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default();
    let uri = with_query(
        &base,
        &[
            ("fieldSelector", field.as_deref()),
            ("resourceVersion", Some(rv)),
            ("watch", Some("true")),
        ],
    );
    let stream = session.stream(&uri, None).await?;
    let mut lines = stream.lines();
    let mut header_printed = !table.is_empty();
    while let Some(line) = lines.try_next().await.map_err(|e| usage(e.to_string()))? {
        let Ok(event) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if event["type"] == "ERROR" {
            let msg = event["object"]["message"].as_str().unwrap_or("watch error");
            return Err(usage(msg.to_string()));
        }
        if event["type"] == "DELETED" || !wanted(&event["object"]) {
            continue;
        }
        let now = jiff::Timestamp::now();
        let mut rows = Vec::new();
        if !header_printed && !args.no_headers {
            rows.push(header(args.all_namespaces));
            header_printed = true;
        }
        rows.push(row(&event["object"], now, args.all_namespaces));
        print!("{}", tabwriter::render(&rows));
        use std::io::Write;
        let _ = std::io::stdout().flush();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_700_000_000;

    fn now() -> jiff::Timestamp {
        jiff::Timestamp::from_second(NOW).unwrap()
    }

    fn at(secs_ago: i64) -> String {
        jiff::Timestamp::from_second(NOW - secs_ago)
            .unwrap()
            .to_string()
    }

    #[test]
    fn last_seen_reads_like_kubectl() {
        let once = json!({"firstTimestamp": at(45), "lastTimestamp": at(45), "count": 1});
        assert_eq!(interval(&once, now()), "45s");
        let repeated = json!({"firstTimestamp": at(300), "lastTimestamp": at(5), "count": 3});
        assert_eq!(interval(&repeated, now()), "5s (x3 over 5m)");
        let series =
            json!({"eventTime": at(600), "series": {"count": 4, "lastObservedTime": at(60)}});
        assert_eq!(interval(&series, now()), "60s (x4 over 10m)");
        assert_eq!(interval(&json!({}), now()), "<unknown>");
    }

    #[test]
    fn rows_name_the_object_and_sort_by_the_last_time() {
        let e = json!({"metadata": {"namespace": "shop"}, "type": "Normal", "reason": "ScalingReplicaSet",
                       "involvedObject": {"kind": "Deployment", "name": "web"},
                       "message": "Scaled up replica set web-1 from 0 to 2\n",
                       "firstTimestamp": at(10), "lastTimestamp": at(10), "count": 1});
        assert_eq!(
            row(&e, now(), true),
            [
                "shop",
                "10s",
                "Normal",
                "ScalingReplicaSet",
                "Deployment/web",
                "Scaled up replica set web-1 from 0 to 2"
            ]
        );
        let older = json!({"lastTimestamp": at(20)});
        let micro = json!({"eventTime": "2023-11-14T22:13:15.500000Z"});
        let mut all = [e.clone(), older.clone(), micro.clone()];
        all.sort_by_key(last_time);
        assert_eq!(all, [older, e, micro]);
    }
}
