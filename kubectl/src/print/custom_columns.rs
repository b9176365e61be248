//! `-o custom-columns=NAME:.metadata.name,IMAGE:.spec.containers[*].image`:
//! one column per spec, several values joined by commas, `<none>` when
//! nothing matches.

use serde_json::Value;

use super::jsonpath::{Step, eval, parse_path, relaxed, text};

#[derive(Debug, Clone)]
pub struct Columns {
    columns: Vec<(String, Vec<Step>)>,
}

impl Columns {
    pub fn parse(spec: &str) -> Result<Columns, String> {
        let mut columns = Vec::new();
        for part in spec.split(',') {
            let (name, path) = part.split_once(':').ok_or_else(|| {
                format!(
                    "unexpected custom-columns spec: {part}, expected <header>:<json-path-expr>"
                )
            })?;
            columns.push((name.to_string(), parse_path(&relaxed(path))?));
        }
        Ok(Columns { columns })
    }

    pub fn header(&self) -> Vec<String> {
        self.columns.iter().map(|(n, _)| n.clone()).collect()
    }

    pub fn row(&self, object: &Value) -> Vec<String> {
        self.columns
            .iter()
            .map(|(_, steps)| {
                let values = eval(steps, object);
                if values.is_empty() {
                    "<none>".to_string()
                } else {
                    values.into_iter().map(text).collect::<Vec<_>>().join(",")
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn columns_join_values_and_show_none() {
        let cols =
            Columns::parse("NAME:.metadata.name,IMAGES:.spec.containers[*].image,X:.x").unwrap();
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"image": "a"}, {"image": "b"}]}});
        assert_eq!(cols.header(), vec!["NAME", "IMAGES", "X"]);
        assert_eq!(cols.row(&pod), vec!["p", "a,b", "<none>"]);
    }
}
