//! `skiff token create|list|delete`: the join tokens of a `skiff server`.
//! A token is printed once, at creation; the server keeps only its hash.

use std::process::ExitCode;
use std::time::Duration;

use crate::cluster::{DataDir, Layout};
use crate::join::token::{Store, Token, ca_hash};
use crate::{Error, Result};

#[derive(Debug, Clone, clap::Subcommand)]
pub enum TokenCommand {
    /// Make a token and print it (with the join command).
    Create {
        /// How long it lasts (`30m`, `24h`, `7d`); `0` for ever.
        #[arg(long, default_value = "24h", value_parser = parse_ttl)]
        ttl: Duration,
        #[arg(long, default_value = "")]
        description: String,
        #[command(flatten)]
        data: DataDir,
    },
    /// The tokens: id, expiry, description (never the secrets).
    List {
        #[command(flatten)]
        data: DataDir,
    },
    /// Revoke a token: workers holding it can no longer join.
    Delete {
        id: String,
        #[command(flatten)]
        data: DataDir,
    },
}

fn parse_ttl(text: &str) -> std::result::Result<Duration, String> {
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    humantime_like(text)
        .ok_or_else(|| format!("{text}: a duration such as 30m, 24h or 7d (0: no expiry)"))
}

/// `<n>s|m|h|d`.
fn humantime_like(text: &str) -> Option<Duration> {
    let (n, unit) = text.split_at(text.len().checked_sub(1)?);
    let n: u64 = n.parse().ok()?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86400,
        _ => return None,
    };
    (secs > 0).then(|| Duration::from_secs(secs))
}

fn server_layout(data: &DataDir) -> Result<Layout> {
    let l = data.layout()?;
    match l.load_settings() {
        Some(s) if s.server => Ok(l),
        Some(_) => Err(Error::Failed(format!(
            "{} holds a cluster that is not a skiff server: tokens are for workers joining a server",
            l.data.display()
        ))),
        None => Err(Error::Failed(format!(
            "no cluster in {} (skiff server starts one)",
            l.data.display()
        ))),
    }
}

/// A new token for the server in `l` (`ttl` seconds; `None` for ever).
pub fn create(l: &Layout, ttl: Option<i64>, description: &str) -> Result<Token> {
    let hash = ca_hash(&l.data.join("pki"))?;
    let now = k8s_openapi::jiff::Timestamp::now().as_second();
    Store::new(&l.data).create(&hash, ttl, now, description)
}

pub fn token(command: &TokenCommand) -> Result<ExitCode> {
    match command {
        TokenCommand::Create {
            ttl,
            description,
            data,
        } => {
            let l = server_layout(data)?;
            let secs = (!ttl.is_zero()).then_some(ttl.as_secs() as i64);
            let t = create(&l, secs, description)?;
            let s = l.load_settings().unwrap_or_else(|| unreachable!());
            println!("{}", t.to_text());
            eprintln!(
                "skiff: on a worker: skiff join https://{}:{} --token {} --node-ip <its address>",
                s.node_ip,
                s.port,
                t.to_text()
            );
        }
        TokenCommand::List { data } => {
            let l = server_layout(data)?;
            let now = k8s_openapi::jiff::Timestamp::now().as_second();
            println!("{:<8} {:<28} DESCRIPTION", "ID", "EXPIRES");
            for t in Store::new(&l.data).list()? {
                let expires = match t.expires {
                    None => "never".to_string(),
                    Some(at) if at <= now => format!("expired {} s ago", now - at),
                    Some(at) => k8s_openapi::jiff::Timestamp::from_second(at)
                        .map(|ts| ts.to_string())
                        .unwrap_or_default(),
                };
                println!("{:<8} {:<28} {}", t.id, expires, t.description);
            }
        }
        TokenCommand::Delete { id, data } => {
            let l = server_layout(data)?;
            if !Store::new(&l.data).delete(id)? {
                return Err(Error::Failed(format!("no token {id:?} (skiff token list)")));
            }
            println!("skiff: token {id} revoked");
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_lifetimes() {
        assert_eq!(parse_ttl("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_ttl("24h"), Ok(Duration::from_secs(86400)));
        assert_eq!(parse_ttl("7d"), Ok(Duration::from_secs(7 * 86400)));
        assert_eq!(parse_ttl("0"), Ok(Duration::ZERO));
        for bad in ["", "h", "10", "1w", "-1h", "0h"] {
            assert!(parse_ttl(bad).is_err(), "{bad}");
        }
    }
}
