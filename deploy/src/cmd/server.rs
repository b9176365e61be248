//! `skiff server`: `skiff up` for the control-plane machine of a lab of
//! several machines — the API server on every address, advertised at
//! `--node-ip` (the address workers reach), this machine's own kubelet and
//! proxy, and the join service on the API port + 1. The first start makes
//! a join token (24 h) and prints the command to run on each worker.

use std::process::ExitCode;

use crate::Result;
use crate::cluster::UpArgs;

pub fn server(a: &UpArgs) -> Result<ExitCode> {
    let mut a = a.clone();
    a.server = true;
    let l = a.data.layout()?;
    let first = !crate::join::token::Store::new(&l.data).exists();
    let code = super::up::up(&a)?;
    let s = l.load_settings().filter(|s| s.server);
    if let Some(s) = s {
        if first {
            let token =
                super::token::create(&l, Some(24 * 3600), "made by the first skiff server")?;
            println!(
                "skiff: join a worker (this token lasts 24 h; skiff token create makes more):"
            );
            println!(
                "    skiff join https://{}:{} --token {} --node-ip <the worker's address>",
                s.node_ip,
                s.port,
                token.to_text()
            );
        } else {
            println!(
                "skiff: join tokens: skiff token list | skiff token create [--ttl 24h] | skiff token delete <id>"
            );
        }
    } else {
        println!(
            "skiff: {} holds a cluster that is not a server (skiff reset, then skiff server)",
            l.data.display()
        );
    }
    Ok(code)
}
