//! `describe configmap`: each data key and its value, binary data sizes.
//! kubectl walks the data in Go map order (random); skiffctl sorts keys.

use serde_json::Value;

use super::events::{self, Reference};
use super::writer::{self, Writer, plain, s};
use crate::session::Session;

pub async fn describe(session: &Session, cm: &Value, show_events: bool) -> String {
    let events = if show_events {
        Some(events::search(session, &Reference::to(cm)).await)
    } else {
        None
    };
    render(cm, events.as_deref())
}

/// Bytes a base64 text decodes to.
pub fn decoded_len(b64: &str) -> usize {
    let t = b64.trim_end_matches('=');
    t.len() * 3 / 4
}

pub fn render(cm: &Value, events: Option<&[Value]>) -> String {
    let md = &cm["metadata"];
    let mut w = Writer::new();
    w.write(0, format!("Name:\t{}\n", s(&md["name"])));
    w.write(0, format!("Namespace:\t{}\n", s(&md["namespace"])));
    writer::labels(&mut w, "", "Labels", &md["labels"]);
    writer::annotations(&mut w, "Annotations", &md["annotations"]);
    w.write(0, "\nData\n====\n");
    let mut data: Vec<(&String, &Value)> = cm["data"].as_object().into_iter().flatten().collect();
    data.sort_by(|a, b| a.0.cmp(b.0));
    for (k, v) in data {
        w.write(0, format!("{k}:\n----\n"));
        w.write(0, format!("{}\n", plain(v)));
        w.write(0, "\n");
    }
    w.write(0, "\nBinaryData\n====\n");
    let mut binary: Vec<(&String, &Value)> =
        cm["binaryData"].as_object().into_iter().flatten().collect();
    binary.sort_by(|a, b| a.0.cmp(b.0));
    for (k, v) in binary {
        w.write(0, format!("{k}: {} bytes\n", decoded_len(s(v))));
    }
    w.write(0, "\n");
    if let Some(events) = events {
        events::describe(&mut w, events);
    }
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn data_and_binary_data() {
        let cm = json!({"metadata": {"name": "c", "namespace": "default"},
                        "data": {"b": "two\nlines", "a": "1"}, "binaryData": {"bin": "AAEC"}});
        assert_eq!(
            render(&cm, Some(&[])),
            "Name:         c\nNamespace:    default\nLabels:       <none>\nAnnotations:  <none>\n\nData\n====\na:\n----\n1\n\nb:\n----\ntwo\nlines\n\n\nBinaryData\n====\nbin: 3 bytes\n\nEvents:  <none>\n"
        );
        assert_eq!(decoded_len("aGk="), 2);
        assert_eq!(decoded_len(""), 0);
    }
}
