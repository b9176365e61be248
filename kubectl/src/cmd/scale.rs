//! `scale TYPE NAME --replicas=N` through the `scale` subresource.

use serde_json::json;

use super::targets::named;
use crate::error::{CtlError, Result, usage};
use crate::session::Session;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// TYPE NAME… or TYPE/NAME…
    #[arg(add = clap_complete::ArgValueCompleter::new(crate::cmd::completion::resources))]
    pub resources: Vec<String>,
    #[arg(long)]
    pub replicas: i64,
}

pub async fn run(session: &Session, args: Args) -> Result<()> {
    for n in named(session, &args.resources)? {
        let uri = format!("{}/scale", n.uri);
        session
            .patch(
                &uri,
                "application/merge-patch+json",
                &json!({"spec": {"replicas": args.replicas}}),
            )
            .await
            .map_err(|e| match e {
                // kubectl finds the object first and words a miss so.
                CtlError::Server(s) if s.code == 404 => {
                    usage(format!("no objects passed to scale {}", s.message))
                }
                other => other,
            })?;
        println!("{}/{} scaled", n.resource.kind_group(), n.name);
    }
    Ok(())
}
