//! Errors, printed the way kubectl prints them (all exit with code 1).
//!
//! `CtlError::Display` is the exact stderr text; `main` prints it and exits 1.

use kube::core::Status;

/// Everything a command can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    /// A failure answered by the API server: `Error from server (NotFound): …`.
    #[error("{}", server_message(.0))]
    Server(Box<Status>),
    /// The server could not be reached.
    #[error(
        "The connection to the server {0} was refused - did you specify the right host or port?"
    )]
    Refused(String),
    /// A usage or client-side error: `error: …`.
    #[error("error: {0}")]
    Usage(String),
    /// An error whose text is already complete (several lines, e.g. from apply).
    #[error("{0}")]
    Raw(String),
    /// Exit with this code after printing the text (`exec`'s remote exit code).
    #[error("{1}")]
    Exit(i32, String),
}

pub type Result<T, E = CtlError> = std::result::Result<T, E>;

/// `error: <msg>`.
pub fn usage(msg: impl Into<String>) -> CtlError {
    CtlError::Usage(msg.into())
}

/// kubectl's text for a server Status: 422 lists the causes, others show
/// the reason in brackets.
pub fn server_message(status: &Status) -> String {
    if status.code == 422
        && let Some(details) = &status.details
        && !details.kind.is_empty()
    {
        // kubectl rebuilds the text from the details: one cause inline,
        // several as bullets.
        let head = format!("The {} \"{}\" is invalid: ", details.kind, details.name);
        let causes: Vec<String> = details
            .causes
            .iter()
            .map(|c| {
                if c.field.is_empty() {
                    c.message.clone()
                } else {
                    format!("{}: {}", c.field, c.message)
                }
            })
            .collect();
        return match causes.len() {
            0 => format!("The {}", status.message),
            1 => format!("{head}{}", causes[0]),
            _ => format!("{head}\n* {}", causes.join("\n* ")),
        };
    }
    if status.code == 409 && status.message.starts_with("Apply failed with") {
        return format!("error: {}\n{SSA_CONFLICT_HELP}", status.message);
    }
    let reason = if status.reason.is_empty() {
        reason_for_code(status.code)
    } else {
        status.reason.clone()
    };
    format!("Error from server ({reason}): {}", status.message)
}

/// What kubectl adds after a server-side apply conflict.
const SSA_CONFLICT_HELP: &str =
    "Please review the fields above--they currently have other managers. Here
are the ways you can resolve this warning:
* If you intend to manage all of these fields, please re-run the apply
  command with the `--force-conflicts` flag.
* If you do not intend to manage all of the fields, please edit your
  manifest to remove references to the fields that should keep their
  current managers.
* You may co-own fields by updating your manifest to match the existing
  value; in this case, you'll become the manager if the other manager(s)
  stop managing the field (remove it from their configuration).
See https://kubernetes.io/docs/reference/using-api/server-side-apply/#conflicts";

fn reason_for_code(code: u16) -> String {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        409 => "Conflict",
        410 => "Gone",
        422 => "Invalid",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "Unknown",
    }
    .to_string()
}

/// Turns a kube-rs error into kubectl's text; `server` is `host:port`
/// of the cluster, used for the connection-refused message.
pub fn from_kube(err: kube::Error, server: &str) -> CtlError {
    match err {
        kube::Error::Api(status) => CtlError::Server(status),
        other => {
            if is_refused(&other) {
                CtlError::Refused(server.to_string())
            } else {
                CtlError::Usage(other.to_string())
            }
        }
    }
}

fn is_refused(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return true;
        }
        if e.to_string().contains("Connection refused") {
            return true;
        }
        cur = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_reads_like_kubectl() {
        let status = Status {
            code: 404,
            reason: "NotFound".into(),
            message: "pods \"x\" not found".into(),
            ..Default::default()
        };
        assert_eq!(
            CtlError::Server(Box::new(status)).to_string(),
            "Error from server (NotFound): pods \"x\" not found"
        );
    }

    #[test]
    fn invalid_lists_its_causes() {
        use kube::core::response::{StatusCause, StatusDetails};
        let cause = |f: &str, m: &str| StatusCause {
            field: f.into(),
            message: m.into(),
            reason: "FieldValueInvalid".into(),
        };
        let mut status = Status {
            code: 422,
            reason: "Invalid".into(),
            message: "ignored".into(),
            details: Some(StatusDetails {
                kind: "Deployment".into(),
                name: "x".into(),
                causes: vec![cause(
                    "spec.replicas",
                    "Invalid value: -1: must be greater than or equal to 0",
                )],
                group: "apps".into(),
                uid: String::new(),
                retry_after_seconds: 0,
            }),
            ..Default::default()
        };
        assert_eq!(
            server_message(&status),
            "The Deployment \"x\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"
        );
        status
            .details
            .as_mut()
            .unwrap()
            .causes
            .push(cause("spec.template", "Required value"));
        assert_eq!(
            server_message(&status),
            "The Deployment \"x\" is invalid: \n* spec.replicas: Invalid value: -1: must be greater than or equal to 0\n* spec.template: Required value"
        );
    }

    #[test]
    fn a_missing_reason_comes_from_the_code() {
        let status = Status {
            code: 409,
            message: "conflict".into(),
            ..Default::default()
        };
        assert_eq!(
            server_message(&status),
            "Error from server (Conflict): conflict"
        );
    }
}
