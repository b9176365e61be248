//! `crictl logs <id>`: the container's output, read from its CRI log file
//! (the path is in `ContainerStatus.log_path`) and rendered by the
//! kubelet API's own reader ([`crate::server::logs`]): `--tail N`,
//! `--timestamps`, and `-f` to follow while the container runs. Both
//! streams go to stdout, in the order the runtime wrote them.

use std::io::Write;

use skiff_proto::cri;

use super::{Cri, CrictlError};
use crate::runtime::Runtime;
use crate::server::logs::{LogOptions, follow, render};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Keep printing what the container writes until it stops.
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N lines (negative: all).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub tail: i64,
    /// Each line with the time the runtime read it.
    #[arg(short, long)]
    pub timestamps: bool,
    /// The container (id or unique prefix).
    pub container: String,
}

impl Args {
    pub fn options(&self) -> LogOptions {
        LogOptions {
            follow: self.follow,
            timestamps: self.timestamps,
            tail_lines: u64::try_from(self.tail).ok(),
            ..Default::default()
        }
    }
}

pub async fn run(cri: &Cri, args: &Args, out: &mut dyn Write) -> Result<(), CrictlError> {
    let id = cri.container_id(&args.container).await?;
    let status = cri
        .call("ContainerStatus", cri.client.container_status(&id))
        .await?;
    let path = status.log_path.clone();
    let log_err = |source| CrictlError::LogFile {
        id: id.clone(),
        path: path.clone(),
        source,
    };
    let bytes = match tokio::fs::read(&path).await {
        Ok(b) => b,
        // Created, never started: nothing written yet.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !path.is_empty() => Vec::new(),
        Err(e) => return Err(log_err(e)),
    };
    let text = String::from_utf8_lossy(&bytes);
    let opts = args.options();
    out.write_all(&render(&text, &opts))?;
    out.flush()?;
    let running = status.state == cri::ContainerState::ContainerRunning as i32;
    if !args.follow || !running {
        return Ok(());
    }
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let follow_opts = LogOptions {
        tail_lines: None,
        ..opts
    };
    let offset = bytes.len();
    let (client, follow_id, follow_path) = (&cri.client, id.clone(), path.clone());
    // The follower ends when the container stops (or the printer goes);
    // dropping its sender ends the printer.
    let follower = async move {
        follow(
            client,
            &follow_id,
            &follow_path,
            offset,
            0,
            &follow_opts,
            &tx,
        )
        .await;
    };
    let printer = async move {
        while let Some(chunk) = rx.recv().await {
            let chunk: Vec<u8> = chunk?;
            out.write_all(&chunk)?;
            out.flush()?;
        }
        Ok::<(), std::io::Error>(())
    };
    let ((), printed) = tokio::join!(follower, printer);
    printed?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kubelet's reader, with crictl's flags: the file's lines as the
    /// program wrote them, partial chunks joined.
    #[test]
    fn flags_become_the_readers_options() {
        let file = "\
2026-01-10T12:00:00.000000001Z stdout F one
2026-01-10T12:00:01.000000000Z stderr P tw
2026-01-10T12:00:01.100000000Z stderr F o
2026-01-10T12:00:02.000000000Z stdout F three
";
        let args = |tail: i64, timestamps: bool| Args {
            follow: false,
            tail,
            timestamps,
            container: "c".into(),
        };
        let s = |a: Args| String::from_utf8(render(file, &a.options())).unwrap();
        assert_eq!(s(args(-1, false)), "one\ntwo\nthree\n");
        assert_eq!(s(args(1, false)), "three\n");
        assert_eq!(s(args(0, false)), "");
        assert_eq!(
            s(args(2, true)),
            "2026-01-10T12:00:01.000000000Z two\n2026-01-10T12:00:02.000000000Z three\n"
        );
    }
}
