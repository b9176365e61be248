//! `crictl ps`: the containers, newest first; running ones unless `-a`.

use std::io::Write;

use jiff::Timestamp;
use skiff_proto::cri;

use super::{Cri, CrictlError, ago, short_id, table};
use crate::runtime::Runtime;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Show all containers, not only running ones.
    #[arg(short, long)]
    pub all: bool,
    /// Only the containers of this pod sandbox (id or unique prefix).
    #[arg(short, long)]
    pub pod: Option<String>,
    /// Show whole ids.
    #[arg(long)]
    pub no_trunc: bool,
    /// Only the ids.
    #[arg(short, long)]
    pub quiet: bool,
    /// Only containers whose name contains this.
    #[arg(long)]
    pub name: Option<String>,
    /// Only containers in this state: created, running, exited, unknown.
    #[arg(long, short)]
    pub state: Option<String>,
}

/// crictl's words for a container state.
pub fn state_name(state: i32) -> &'static str {
    match cri::ContainerState::try_from(state) {
        Ok(cri::ContainerState::ContainerCreated) => "Created",
        Ok(cri::ContainerState::ContainerRunning) => "Running",
        Ok(cri::ContainerState::ContainerExited) => "Exited",
        _ => "Unknown",
    }
}

/// The containers `args` asks for, newest first (`--pod` already applied
/// by the runtime's filter).
pub fn select(mut containers: Vec<cri::Container>, args: &Args) -> Vec<cri::Container> {
    containers.retain(|c| {
        let name = c.metadata.as_ref().map_or("", |m| m.name.as_str());
        let state = state_name(c.state);
        let state_ok = match &args.state {
            Some(s) => state.eq_ignore_ascii_case(s),
            None => args.all || state == "Running",
        };
        state_ok && args.name.as_ref().is_none_or(|n| name.contains(n.as_str()))
    });
    containers.sort_by_key(|c| std::cmp::Reverse(c.created_at));
    containers
}

/// The image as crictl's IMAGE column shows it: the name given at create,
/// or a short id when that was a digest.
fn image_of(c: &cri::Container, no_trunc: bool) -> String {
    let image = c.image.as_ref().map_or("", |i| i.image.as_str());
    if !no_trunc && let Some(hex) = image.strip_prefix("sha256:") {
        return short_id(hex, "", false);
    }
    image.to_string()
}

/// `CONTAINER  IMAGE  CREATED  STATE  NAME  ATTEMPT  POD ID`.
pub fn render(containers: &[cri::Container], now: Timestamp, no_trunc: bool) -> String {
    let rows: Vec<Vec<String>> = containers
        .iter()
        .map(|c| {
            let md = c.metadata.clone().unwrap_or_default();
            vec![
                short_id(&c.id, "", no_trunc),
                image_of(c, no_trunc),
                ago(c.created_at, now),
                state_name(c.state).into(),
                md.name,
                md.attempt.to_string(),
                short_id(&c.pod_sandbox_id, "", no_trunc),
            ]
        })
        .collect();
    table(
        &[
            "CONTAINER",
            "IMAGE",
            "CREATED",
            "STATE",
            "NAME",
            "ATTEMPT",
            "POD ID",
        ],
        &rows,
    )
}

pub async fn run(
    cri: &Cri,
    args: &Args,
    now: Timestamp,
    out: &mut dyn Write,
) -> Result<(), CrictlError> {
    let pod = match &args.pod {
        Some(prefix) => cri.pod_id(prefix).await?,
        None => String::new(),
    };
    let containers = cri
        .call("ListContainers", cri.client.list_containers(&pod))
        .await?;
    let containers = select(containers, args);
    if args.quiet {
        for c in &containers {
            writeln!(out, "{}", c.id)?;
        }
    } else {
        out.write_all(render(&containers, now, args.no_trunc).as_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(
        id: &str,
        name: &str,
        image: &str,
        state: cri::ContainerState,
        created: &str,
    ) -> cri::Container {
        cri::Container {
            id: id.into(),
            pod_sandbox_id: "feedfacefeedface0000".into(),
            metadata: Some(cri::ContainerMetadata {
                name: name.into(),
                attempt: 2,
            }),
            image: Some(cri::ImageSpec {
                image: image.into(),
                ..Default::default()
            }),
            state: state as i32,
            created_at: created.parse::<Timestamp>().unwrap().as_nanosecond() as i64,
            ..Default::default()
        }
    }

    fn args() -> Args {
        Args {
            all: false,
            pod: None,
            no_trunc: false,
            quiet: false,
            name: None,
            state: None,
        }
    }

    #[test]
    fn running_ones_by_default_all_with_a() {
        let now: Timestamp = "2026-01-10T12:00:00Z".parse().unwrap();
        let list = vec![
            container(
                "aaaaaaaaaaaaaaaa1111",
                "web",
                "docker.io/library/httpd:latest",
                cri::ContainerState::ContainerRunning,
                "2026-01-10T11:00:00Z",
            ),
            container(
                "bbbbbbbbbbbbbbbb2222",
                "init",
                "sha256:0123456789abcdef0123",
                cri::ContainerState::ContainerExited,
                "2026-01-10T11:59:00Z",
            ),
        ];
        let got = render(&select(list.clone(), &args()), now, false);
        let want = "\
CONTAINER           IMAGE                            CREATED             STATE               NAME                ATTEMPT             POD ID
aaaaaaaaaaaaa       docker.io/library/httpd:latest   About an hour ago   Running             web                 2                   feedfacefeedf
";
        assert_eq!(got, want);
        let all = select(
            list.clone(),
            &Args {
                all: true,
                ..args()
            },
        );
        let got = render(&all, now, false);
        let lines: Vec<&str> = got.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(
            lines[1].starts_with("bbbbbbbbbbbbb       0123456789abc   "),
            "{got}"
        );
        assert!(lines[1].contains("Exited"), "{got}");
        let exited = select(
            list,
            &Args {
                state: Some("exited".into()),
                ..args()
            },
        );
        assert_eq!(exited.len(), 1);
        assert!(render(&exited, now, true).contains("sha256:0123456789abcdef0123"));
    }
}
