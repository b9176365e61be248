//! Reading manifests for `apply -f` and `delete -f`: files, directories
//! (`-R` to recurse), `-` for stdin; multi-document YAML, JSON, and `List`
//! kinds expanded to their items. A parse error names the file, the
//! document's index (from 1) and the line in the file.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Result, usage};

/// One object and where it came from.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub source: String,
    pub object: Value,
}

/// Every object of `paths` in order.
pub fn read_all(paths: &[String], recursive: bool) -> Result<Vec<Manifest>> {
    let mut out = Vec::new();
    for p in paths {
        if p == "-" {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                .map_err(|e| usage(format!("reading stdin: {e}")))?;
            out.extend(parse("STDIN", &text)?);
            continue;
        }
        let path = Path::new(p);
        if !path.exists() {
            return Err(usage(format!("the path \"{p}\" does not exist")));
        }
        let files = if path.is_dir() {
            let mut files = Vec::new();
            walk(path, recursive, &mut files)?;
            files
        } else {
            vec![path.to_path_buf()]
        };
        for file in files {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| usage(format!("reading {}: {e}", file.display())))?;
            out.extend(parse(&file.display().to_string(), &text)?);
        }
    }
    Ok(out)
}

fn walk(dir: &Path, recursive: bool, files: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| usage(format!("reading {}: {e}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            if recursive {
                walk(&entry, recursive, files)?;
            }
        } else if entry
            .extension()
            .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
        {
            files.push(entry);
        }
    }
    Ok(())
}

/// Splits on `---` lines; returns each document's text and its first line (1-based).
pub fn split_documents(text: &str) -> Vec<(String, usize)> {
    let mut docs = Vec::new();
    let mut current = String::new();
    let mut start = 1;
    for (i, line) in text.lines().enumerate() {
        if line == "---" || line.starts_with("--- ") || line.starts_with("---\t") {
            docs.push((std::mem::take(&mut current), start));
            start = i + 2;
            continue;
        }
        current.push_str(line);
        current.push('\n');
    }
    docs.push((current, start));
    docs
}

/// Parses one file's text.
pub fn parse(source: &str, text: &str) -> Result<Vec<Manifest>> {
    let mut out = Vec::new();
    for (index, (doc, start)) in split_documents(text).into_iter().enumerate() {
        let blank = doc
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'));
        if blank {
            continue;
        }
        let value: Value = serde_saphyr::from_str(&doc).map_err(|e| {
            let line = e.location().map(|l| l.line() as usize + start - 1);
            let first = e.to_string().lines().next().unwrap_or_default().to_string();
            match line {
                Some(line) => usage(format!(
                    "error parsing {source} (document {}, line {line}): {first}",
                    index + 1
                )),
                None => usage(format!(
                    "error parsing {source} (document {}): {first}",
                    index + 1
                )),
            }
        })?;
        if value.is_null() {
            continue;
        }
        if !value.is_object() || value["kind"].as_str().is_none_or(str::is_empty) {
            return Err(usage(format!(
                "error validating data from {source} (document {}, line {start}): Object 'Kind' is missing",
                index + 1
            )));
        }
        expand(source, value, &mut out);
    }
    Ok(out)
}

fn expand(source: &str, value: Value, out: &mut Vec<Manifest>) {
    let is_list =
        value["kind"].as_str().is_some_and(|k| k.ends_with("List")) && value["items"].is_array();
    if is_list {
        for item in value["items"].as_array().cloned().unwrap_or_default() {
            expand(source, item, out);
        }
    } else {
        out.push(Manifest {
            source: source.to_string(),
            object: value,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_lists_and_json() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\n# c\n---\nkind: List\napiVersion: v1\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: b}}\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: c}}\n";
        let names: Vec<String> = parse("f.yaml", text)
            .unwrap()
            .iter()
            .map(|m| m.object["metadata"]["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(names, ["a", "b", "c"]);
        let json = parse(
            "f.json",
            r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"x"}}"#,
        )
        .unwrap();
        assert_eq!(json[0].object["kind"], "Namespace");
    }

    #[test]
    fn a_parse_error_names_file_document_and_line() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [b\n";
        let err = parse("bad.yaml", text).unwrap_err().to_string();
        assert!(
            err.starts_with("error: error parsing bad.yaml (document 2, line "),
            "{err}"
        );
        let line: usize = err
            .split("line ")
            .nth(1)
            .unwrap()
            .split(')')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!((9..=10).contains(&line), "{err}");
    }
}
