//! `crictl pods`: the pod sandboxes, newest first.

use std::io::Write;

use jiff::Timestamp;
use skiff_proto::cri;

use super::{Cri, CrictlError, ago, short_id, table};
use crate::runtime::Runtime;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Show whole ids.
    #[arg(long)]
    pub no_trunc: bool,
    /// Only the ids.
    #[arg(short, long)]
    pub quiet: bool,
    /// Only pods whose name contains this.
    #[arg(long)]
    pub name: Option<String>,
    /// Only pods of this namespace.
    #[arg(long)]
    pub namespace: Option<String>,
    /// Only pods in this state: `ready` or `notready`.
    #[arg(long, short)]
    pub state: Option<String>,
}

/// crictl's words for a sandbox state.
pub fn state_name(state: i32) -> &'static str {
    match cri::PodSandboxState::try_from(state) {
        Ok(cri::PodSandboxState::SandboxReady) => "Ready",
        Ok(cri::PodSandboxState::SandboxNotready) => "NotReady",
        Err(_) => "Unknown",
    }
}

/// The pods `args` asks for, newest first.
pub fn select(mut pods: Vec<cri::PodSandbox>, args: &Args) -> Vec<cri::PodSandbox> {
    pods.retain(|p| {
        let md = p.metadata.clone().unwrap_or_default();
        args.name
            .as_ref()
            .is_none_or(|n| md.name.contains(n.as_str()))
            && args.namespace.as_ref().is_none_or(|n| md.namespace == *n)
            && args
                .state
                .as_ref()
                .is_none_or(|s| state_name(p.state).eq_ignore_ascii_case(s))
    });
    pods.sort_by_key(|p| std::cmp::Reverse(p.created_at));
    pods
}

/// `POD ID  CREATED  STATE  NAME  NAMESPACE  ATTEMPT`.
pub fn render(pods: &[cri::PodSandbox], now: Timestamp, no_trunc: bool) -> String {
    let rows: Vec<Vec<String>> = pods
        .iter()
        .map(|p| {
            let md = p.metadata.clone().unwrap_or_default();
            vec![
                short_id(&p.id, "", no_trunc),
                ago(p.created_at, now),
                state_name(p.state).into(),
                md.name,
                md.namespace,
                md.attempt.to_string(),
            ]
        })
        .collect();
    table(
        &["POD ID", "CREATED", "STATE", "NAME", "NAMESPACE", "ATTEMPT"],
        &rows,
    )
}

pub async fn run(
    cri: &Cri,
    args: &Args,
    now: Timestamp,
    out: &mut dyn Write,
) -> Result<(), CrictlError> {
    let pods = cri
        .call("ListPodSandbox", cri.client.list_pod_sandboxes(&[]))
        .await?;
    let pods = select(pods, args);
    if args.quiet {
        for p in &pods {
            writeln!(out, "{}", p.id)?;
        }
    } else {
        out.write_all(render(&pods, now, args.no_trunc).as_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn pod(
        id: &str,
        name: &str,
        ns: &str,
        ready: bool,
        created: &str,
    ) -> cri::PodSandbox {
        cri::PodSandbox {
            id: id.into(),
            metadata: Some(cri::PodSandboxMetadata {
                name: name.into(),
                uid: format!("uid-{name}"),
                namespace: ns.into(),
                attempt: 0,
            }),
            state: if ready {
                cri::PodSandboxState::SandboxReady
            } else {
                cri::PodSandboxState::SandboxNotready
            } as i32,
            created_at: created.parse::<Timestamp>().unwrap().as_nanosecond() as i64,
            ..Default::default()
        }
    }

    #[test]
    fn the_table_lists_newest_first() {
        let now: Timestamp = "2026-01-10T12:00:00Z".parse().unwrap();
        let pods = vec![
            pod(
                "1111111111111111aaaa",
                "web-0",
                "default",
                false,
                "2026-01-10T09:00:00Z",
            ),
            pod(
                "2222222222222222bbbb",
                "coredns-5d78c9869d-abcde",
                "kube-system",
                true,
                "2026-01-10T11:59:30Z",
            ),
        ];
        let args = Args {
            no_trunc: false,
            quiet: false,
            name: None,
            namespace: None,
            state: None,
        };
        let got = render(&select(pods.clone(), &args), now, false);
        let want = "\
POD ID              CREATED             STATE               NAME                       NAMESPACE           ATTEMPT
2222222222222       30 seconds ago      Ready               coredns-5d78c9869d-abcde   kube-system         0
1111111111111       3 hours ago         NotReady            web-0                      default             0
";
        assert_eq!(got, want);
        let only = select(
            pods.clone(),
            &Args {
                state: Some("notready".into()),
                ..args
            },
        );
        assert_eq!(only.len(), 1);
        assert_eq!(only[0].id, "1111111111111111aaaa");
        assert!(
            render(&only, now, true).contains("1111111111111111aaaa   "),
            "no-trunc shows whole ids"
        );
    }
}
