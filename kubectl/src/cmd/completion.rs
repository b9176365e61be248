//! `completion bash|zsh|fish`: a script to source that completes
//! skiffctl's verbs and flags, and resource types and names from the
//! cluster, as kubectl's completion does.
//!
//! The script calls skiffctl back at each TAB (clap_complete's dynamic
//! completion: `COMPLETE=<shell> skiffctl -- <words>`). Verbs and flags come
//! from the command tree; the completers here add what only the cluster
//! knows: `get <TAB>` offers the server's resource types, `get pods <TAB>`
//! and `get pod/<TAB>` the pods' names, `logs <TAB>` pods, `drain <TAB>`
//! nodes — in the namespace and context the words already name.

use std::ffi::OsStr;
use std::time::Duration;

use clap::CommandFactory;
use clap_complete::CompletionCandidate;
use clap_complete::env::{Bash, EnvCompleter, Fish, Zsh};

use crate::error::{Result, usage};
use crate::kubeconfig::ConfigFlags;
use crate::session::Session;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// bash, zsh or fish.
    pub shell: String,
}

pub fn run(args: Args) -> Result<()> {
    let exe = std::env::current_exe().map_err(|e| usage(e.to_string()))?;
    let exe = exe.to_string_lossy();
    let shell: &dyn EnvCompleter = match args.shell.as_str() {
        "bash" => &Bash,
        "zsh" => &Zsh,
        "fish" => &Fish,
        other => {
            return Err(usage(format!("Unsupported shell type \"{other}\".")));
        }
    };
    let mut out = std::io::stdout();
    shell
        .write_registration("COMPLETE", "skiffctl", "skiffctl", &exe, &mut out)
        .map_err(|e| usage(e.to_string()))
}

/// Answers a completion request (`COMPLETE=<shell> skiffctl -- …`) and
/// exits; returns when this run is not one.
pub fn answer_if_asked() {
    clap_complete::CompleteEnv::with_factory(crate::Cli::command).complete();
}

/// The words being completed (after `--`) and the index of the current one.
fn words() -> (Vec<String>, usize) {
    let all: Vec<String> = std::env::args().collect();
    let words: Vec<String> = match all.iter().position(|a| a == "--") {
        Some(i) => all[i + 1..].to_vec(),
        None => Vec::new(),
    };
    let index = std::env::var("_CLAP_COMPLETE_INDEX")
        .ok()
        .and_then(|i| i.parse().ok())
        .unwrap_or(words.len().saturating_sub(1));
    (words, index)
}

/// What the words before the current one say: the connection flags, and
/// the positional arguments after the verb(s).
#[derive(Debug, Default, PartialEq)]
pub struct Context {
    pub kubeconfig: Option<String>,
    pub context: Option<String>,
    pub namespace: Option<String>,
    /// Positional words after the first (the verb), before the current one.
    pub positionals: Vec<String>,
}

/// Reads the words before `index` (`words[0]` is the program).
pub fn context_of(words: &[String], index: usize) -> Context {
    let mut c = Context::default();
    let mut verb_seen = false;
    let mut i = 1;
    let before = &words[..index.min(words.len())];
    while i < before.len() {
        let w = &before[i];
        let value = |j: usize| before.get(j).cloned();
        let flag = |name: &str| -> Option<Option<String>> {
            if w == name {
                Some(value(i + 1))
            } else {
                w.strip_prefix(&format!("{name}="))
                    .map(|v| Some(v.to_string()))
            }
        };
        if let Some(v) = flag("--kubeconfig") {
            c.kubeconfig = v;
            i += if w.contains('=') { 1 } else { 2 };
            continue;
        }
        if let Some(v) = flag("--context") {
            c.context = v;
            i += if w.contains('=') { 1 } else { 2 };
            continue;
        }
        if let Some(v) = flag("--namespace").or_else(|| flag("-n")) {
            c.namespace = v;
            i += if w.contains('=') { 1 } else { 2 };
            continue;
        }
        if w.starts_with('-') {
            i += 1;
            continue;
        }
        if verb_seen {
            c.positionals.push(w.clone());
        } else {
            verb_seen = true;
        }
        i += 1;
    }
    c
}

/// Runs `f` on a session opened from `c`'s flags, on a thread of its own
/// (the completer runs inside main's runtime), for at most 5 s.
fn with_session<T: Send + 'static>(
    c: &Context,
    f: impl AsyncFnOnce(&Session) -> Option<T> + Send + 'static,
) -> Option<T> {
    let flags = ConfigFlags {
        kubeconfig: c.kubeconfig.clone().map(Into::into),
        context: c.context.clone(),
        namespace: c.namespace.clone(),
    };
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(5), async {
                let session = Session::open(&flags).await.ok()?;
                f(&session).await
            })
            .await
            .ok()
            .flatten()
        })
    })
    .join()
    .ok()
    .flatten()
}

/// The names of objects of `typed` in the context's namespace.
async fn names(session: &Session, typed: &str) -> Option<Vec<String>> {
    let r = session.catalog.find(typed)?;
    let list = session
        .get_json(&r.path(session.ns_for(r, false)))
        .await
        .ok()?;
    Some(
        list["items"]
            .as_array()?
            .iter()
            .filter_map(|o| o["metadata"]["name"].as_str().map(str::to_string))
            .collect(),
    )
}

fn candidates(values: Vec<String>, current: &OsStr) -> Vec<CompletionCandidate> {
    let prefix = current.to_string_lossy();
    let mut values: Vec<String> = values
        .into_iter()
        .filter(|v| v.starts_with(&*prefix))
        .collect();
    values.sort();
    values.dedup();
    values.into_iter().map(CompletionCandidate::new).collect()
}

/// `TYPE [NAME…]` or `TYPE/NAME` arguments: types first, then names.
pub fn resources(current: &OsStr) -> Vec<CompletionCandidate> {
    let (words, index) = words();
    let c = context_of(&words, index);
    let cur = current.to_string_lossy().to_string();
    let first = c.positionals.first().cloned();
    let values = with_session(&c, async move |s: &Session| {
        if let Some((typed, _)) = cur.split_once('/') {
            let typed = typed.to_string();
            let found = names(s, &typed).await?;
            return Some(found.into_iter().map(|n| format!("{typed}/{n}")).collect());
        }
        match first {
            // The first argument: a type (kubectl offers the plural names).
            None => Some(
                s.catalog
                    .resources
                    .iter()
                    .map(|r| r.plural.clone())
                    .collect(),
            ),
            Some(typed) if !typed.contains('/') => names(s, &typed).await,
            Some(_) => None,
        }
    });
    candidates(values.unwrap_or_default(), current)
}

/// Completes the names of one type (`pods` for logs and exec, `nodes` for
/// cordon and drain).
fn names_of(typed: &'static str, current: &OsStr) -> Vec<CompletionCandidate> {
    let (words, index) = words();
    let c = context_of(&words, index);
    let values = with_session(&c, async move |s: &Session| names(s, typed).await);
    candidates(values.unwrap_or_default(), current)
}

/// A pod's name, or a workload's `TYPE/NAME` once a `/` is typed.
pub fn pods(current: &OsStr) -> Vec<CompletionCandidate> {
    if current.to_string_lossy().contains('/') {
        return resources(current);
    }
    names_of("pods", current)
}

pub fn nodes(current: &OsStr) -> Vec<CompletionCandidate> {
    names_of("nodes", current)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn the_words_before_the_cursor_name_the_connection_and_the_type() {
        let words = w("skiffctl --kubeconfig /k -n shop get pods we");
        assert_eq!(
            context_of(&words, 7),
            Context {
                kubeconfig: Some("/k".into()),
                namespace: Some("shop".into()),
                positionals: vec!["pods".into()],
                ..Default::default()
            }
        );
        let words = w("skiffctl get --context=lab deploy ");
        let c = context_of(&words, 4);
        assert_eq!(
            (c.context.as_deref(), c.positionals),
            (Some("lab"), vec!["deploy".to_string()])
        );
        assert_eq!(
            context_of(&w("skiffctl get "), 2).positionals,
            Vec::<String>::new()
        );
    }
}
