//! `describe TYPE [NAME…]` (being written).

use crate::error::{Result, usage};
use crate::session::Session;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// TYPE [NAME…] or TYPE/NAME…
    pub resources: Vec<String>,
    /// Selector (label query) to filter on.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// All namespaces.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Show events (default true).
    #[arg(long, default_value = "true", num_args = 0..=1, default_missing_value = "true")]
    pub show_events: String,
}

pub async fn run(_session: &Session, _args: Args) -> Result<()> {
    Err(usage("describe is not written yet"))
}
