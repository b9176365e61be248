//! The shim: one small process per container, outside it, that outlives the
//! kubelet. It runs the container (`run`, a child process), writes its
//! stdout and stderr to the log file in the CRI format the kubelet and
//! `kubectl logs` read — `<RFC3339Nano time> <stream> F <line>` — and, when
//! the container ends, its exit code and reason to the exit file. A restarted
//! kubelet finds both on disk.
//!
//! It also rotates that log ([`RotatingLog`], the kubelet's
//! `--container-log-max-size` and `--container-log-max-files`, passed as
//! `--log-max-size` and `--log-max-files`): before a line would take the
//! current file `<n>.log` past the max size, the file is renamed
//! `<n>.log.<YYYYMMDD-HHMMSS>` (UTC; `-1`, `-2`… appended when a second
//! already has one), the oldest rotated files are deleted so that at most
//! max-files files remain, counting the current one, and a new `<n>.log` is
//! started. Lines are never split across files, so every file stays valid
//! CRI format; a single line longer than the max size gets a file of its own.
//!
//! Upstream the kubelet rotates (every 10 s) and then asks the runtime to
//! reopen the file (`ReopenContainerLog`); here the shim is the only writer,
//! so it rotates itself, at the exact line, with nothing to reopen and no
//! window in which a file grows past the limit. Rotated files are kept plain,
//! not gzip-compressed as upstream does with all but the newest: the bound on
//! disk (max-size × max-files) is the same, and rotation stays a rename and
//! a delete under the writer's lock, never a compression holding up the
//! container's output.
//!
//! With `--stdin` the container's stdin is a pipe the shim keeps open (else
//! `/dev/null`); with `--tty` the container runs on a pseudo-terminal whose
//! master the shim holds, and everything it prints is one `stdout` stream.
//! With `--attach-socket` the shim serves attach sessions there
//! ([`super::attach`]): the output goes to attached clients as it comes, and
//! their input to the container. Output is logged line by line (a trailing
//! `\r` dropped, as upstream does); a line longer than 16 KiB is logged in
//! `P` (partial) pieces, as upstream's runtimes do, so that a container
//! printing without newlines cannot grow the shim.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::attach::Hub;
use super::run::Exit;
use crate::stream::channel;

/// One CRI log line.
pub fn log_line(stream: &str, line: &str, at: jiff::Timestamp) -> String {
    log_entry(stream, 'F', line, at)
}

/// One CRI log entry: `F` a full line, `P` a piece of a longer one.
pub fn log_entry(stream: &str, tag: char, line: &str, at: jiff::Timestamp) -> String {
    format!(
        "{} {stream} {tag} {line}\n",
        at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    )
}

/// The longest log entry; longer lines are split into `P` entries.
pub const MAX_LINE: usize = 16 << 10;

/// Cuts a byte stream into log entries: whole lines (`F`, without their
/// `\n` or `\r\n`) and, for a line that grows past [`MAX_LINE`], partial
/// pieces (`P`) cut on a character boundary.
#[derive(Debug, Default)]
pub struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    /// The entries `data` completes.
    pub fn push(&mut self, data: &[u8]) -> Vec<(char, String)> {
        self.pending.extend_from_slice(data);
        let mut out = Vec::new();
        loop {
            let newline = self
                .pending
                .iter()
                .take(MAX_LINE + 1)
                .position(|b| *b == b'\n');
            if let Some(at) = newline {
                let mut line: Vec<u8> = self.pending.drain(..=at).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                out.push(('F', String::from_utf8_lossy(&line).into_owned()));
            } else if self.pending.len() > MAX_LINE {
                let mut cut = MAX_LINE;
                // Back off to the start of a UTF-8 character (at most 3 bytes).
                while cut > MAX_LINE - 3 && (self.pending[cut] & 0xC0) == 0x80 {
                    cut -= 1;
                }
                let piece: Vec<u8> = self.pending.drain(..cut).collect();
                out.push(('P', String::from_utf8_lossy(&piece).into_owned()));
            } else {
                return out;
            }
        }
    }

    /// What is left at the end of the stream, as a whole line.
    pub fn finish(&mut self) -> Option<String> {
        let mut rest = std::mem::take(&mut self.pending);
        if rest.last() == Some(&b'\r') {
            rest.pop();
        }
        (!rest.is_empty()).then(|| String::from_utf8_lossy(&rest).into_owned())
    }
}

/// When the shim rotates its log, with upstream kubelet's defaults (10Mi, 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRotation {
    /// The largest a log file grows (bytes).
    pub max_size: u64,
    /// How many files are kept, the current one included (at least 2).
    pub max_files: usize,
}

impl Default for LogRotation {
    fn default() -> Self {
        LogRotation {
            max_size: 10 << 20,
            max_files: 5,
        }
    }
}

/// A CRI log file that rotates itself (see the module doc).
pub struct RotatingLog {
    path: PathBuf,
    file: File,
    size: u64,
    rotation: LogRotation,
    /// The last few messages written, newest last (the OOM check).
    recent: VecDeque<String>,
}

impl RotatingLog {
    /// Opens (appends to) `path`, creating its directory.
    pub fn open(path: &Path, rotation: LogRotation) -> std::io::Result<RotatingLog> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = Self::append(path)?;
        let size = file.metadata()?.len();
        Ok(RotatingLog {
            path: path.to_path_buf(),
            file,
            size,
            rotation: LogRotation {
                max_files: rotation.max_files.max(2),
                ..rotation
            },
            recent: VecDeque::new(),
        })
    }

    fn append(path: &Path) -> std::io::Result<File> {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
    }

    /// Writes one line (rotating first when it would not fit).
    pub fn write_line(
        &mut self,
        stream: &str,
        line: &str,
        at: jiff::Timestamp,
    ) -> std::io::Result<()> {
        self.write_entry(stream, 'F', line, at)
    }

    /// Writes one entry, `F` or `P` (rotating first when it would not fit).
    pub fn write_entry(
        &mut self,
        stream: &str,
        tag: char,
        line: &str,
        at: jiff::Timestamp,
    ) -> std::io::Result<()> {
        let text = log_entry(stream, tag, line, at);
        let len = text.len() as u64;
        if self.size > 0 && self.size + len > self.rotation.max_size {
            self.rotate(at)?;
        }
        self.file.write_all(text.as_bytes())?;
        self.size += len;
        if self.recent.len() == 5 {
            self.recent.pop_front();
        }
        self.recent.push_back(line.to_string());
        Ok(())
    }

    /// Renames the current file, deletes the oldest rotated ones, and
    /// starts a new file: at no moment are there more than max-files.
    fn rotate(&mut self, at: jiff::Timestamp) -> std::io::Result<()> {
        // Named for `at`, or just after the newest rotated file when that
        // one has this second already (or a later one: the clock went back),
        // so that names keep the files' order.
        let stamp = at.strftime("%Y%m%d-%H%M%S").to_string();
        let suffix = match rotated(&self.path)?.pop().map(|(key, _)| key) {
            Some((last, n)) if last >= stamp => format!("{last}-{}", n + 1),
            _ => stamp,
        };
        let target = PathBuf::from(format!("{}.{suffix}", self.path.display()));
        self.file.flush()?;
        std::fs::rename(&self.path, &target)?;
        let mut old = rotated_files(&self.path)?;
        let excess = old.len().saturating_sub(self.rotation.max_files - 1);
        for p in old.drain(..excess) {
            std::fs::remove_file(&p)?;
        }
        self.file = Self::append(&self.path)?;
        self.size = 0;
        Ok(())
    }

    /// Whether one of the last lines says the container was OOM-killed
    /// (`run` prints "<id>: OOMKilled" on its stderr when it was).
    pub fn oom_killed(&self) -> bool {
        self.recent.iter().any(|l| l.ends_with(": OOMKilled"))
    }
}

/// The rotated files of the log at `path` (`<path>.<YYYYMMDD-HHMMSS>[-N][.gz]`),
/// oldest first.
pub fn rotated_files(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    Ok(rotated(path)?.into_iter().map(|(_, p)| p).collect())
}

/// [`rotated_files`] with their order keys.
fn rotated(path: &Path) -> std::io::Result<Vec<((String, u32), PathBuf)>> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return Ok(Vec::new());
    };
    let prefix = format!("{name}.");
    let mut found: Vec<((String, u32), PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let file = entry.file_name();
        let Some(rest) = file.to_str().and_then(|f| f.strip_prefix(&prefix)) else {
            continue;
        };
        if let Some(key) = rotation_key(rest) {
            found.push((key, entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

/// `20260102-150405`, `20260102-150405-3` (and either with `.gz`) → its order.
fn rotation_key(suffix: &str) -> Option<(String, u32)> {
    let s = suffix.strip_suffix(".gz").unwrap_or(suffix);
    let (stamp, n) = match s.get(15..) {
        Some("") => (s, 0),
        Some(rest) => (&s[..15], rest.strip_prefix('-')?.parse().ok()?),
        None => return None,
    };
    let b = stamp.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    (b.len() == 15 && digits(0..8) && b[8] == b'-' && digits(9..15)).then(|| (stamp.to_string(), n))
}

/// The shim's command line: `shim --log L --exit-file E [--log-max-size S]
/// [--log-max-files N] [--stdin [--stdin-once]] [--tty] [--attach-socket A]
/// -- COMMAND…`, shared by `skiff-runtime shim` and `skiff-kubelet runtime
/// shim`.
#[derive(Debug, Clone, clap::Args)]
pub struct ShimArgs {
    /// The CRI log file.
    #[arg(long)]
    pub log: PathBuf,
    /// Where the exit code and reason are written when the container ends.
    #[arg(long)]
    pub exit_file: PathBuf,
    /// Rotate the log before it grows past this many bytes.
    #[arg(long, default_value_t = 10 << 20)]
    pub log_max_size: u64,
    /// Keep at most this many log files, the current one included (at least 2).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(2..))]
    pub log_max_files: u64,
    /// Keep the container's stdin open for attached clients (else it is /dev/null).
    #[arg(long)]
    pub stdin: bool,
    /// Close the container's stdin once the first attached client's input ends.
    #[arg(long, requires = "stdin")]
    pub stdin_once: bool,
    /// Run the container on a pseudo-terminal.
    #[arg(long)]
    pub tty: bool,
    /// Serve attach sessions on this unix socket.
    #[arg(long)]
    pub attach_socket: Option<PathBuf>,
    /// The container: what to run.
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

impl ShimArgs {
    /// The flags for `command` logging to `log`, with the defaults.
    pub fn new(log: &Path, exit_file: &Path, command: &[&str]) -> ShimArgs {
        ShimArgs {
            log: log.to_path_buf(),
            exit_file: exit_file.to_path_buf(),
            log_max_size: LogRotation::default().max_size,
            log_max_files: LogRotation::default().max_files as u64,
            stdin: false,
            stdin_once: false,
            tty: false,
            attach_socket: None,
            command: command.iter().map(|s| s.to_string()).collect(),
        }
    }

    pub fn rotation(&self) -> LogRotation {
        LogRotation {
            max_size: self.log_max_size,
            max_files: self.log_max_files as usize,
        }
    }
}

/// How long the shim lets attached clients take the end of the output
/// before it exits.
const SESSIONS_GRACE: Duration = Duration::from_secs(5);

/// Copies one output stream of the container to attached clients (on
/// `channel`) and to the log (as `stream`), until it ends.
fn pump(
    mut from: File,
    stream: &'static str,
    channel: u8,
    log: Arc<Mutex<RotatingLog>>,
    hub: Option<Arc<Hub>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut lines = LineSplitter::default();
        let mut buf = vec![0u8; 32 << 10];
        let write = |tag: char, line: &str| {
            if let Ok(mut f) = log.lock() {
                let _ = f.write_entry(stream, tag, line, jiff::Timestamp::now());
            }
        };
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                // EIO: a terminal whose last slave holder is gone.
                Err(_) => break,
            };
            if let Some(hub) = &hub {
                hub.publish(channel, &buf[..n]);
            }
            for (tag, line) in lines.push(&buf[..n]) {
                write(tag, &line);
            }
        }
        if let Some(rest) = lines.finish() {
            write('F', &rest);
        }
    })
}

/// The shim's ends of the container's stdio.
struct Ends {
    /// Its stdin (a pipe, or the terminal), with `--stdin`.
    stdin: Option<Box<dyn Write + Send>>,
    /// Its output streams: the file, the log's stream name, the channel.
    outputs: Vec<(File, &'static str, u8)>,
    /// The terminal's master, with `--tty`.
    pty: Option<Arc<OwnedFd>>,
}

/// A pseudo-terminal (the host's): the container's stdin, stdout and
/// stderr are its slave; the shim reads, writes and resizes the master.
fn terminal(stdin: bool) -> std::io::Result<([Stdio; 3], Ends)> {
    use nix::fcntl::{FcntlArg, FdFlag, fcntl};
    let pty = nix::pty::openpty(None, None).map_err(std::io::Error::from)?;
    // The master is the shim's alone: not the container's, nor `run`'s.
    fcntl(&pty.master, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).map_err(std::io::Error::from)?;
    let slave = pty.slave;
    let master = Arc::new(pty.master);
    let writer: Option<Box<dyn Write + Send>> = if stdin {
        Some(Box::new(File::from(master.try_clone()?)))
    } else {
        None
    };
    let child = [
        Stdio::from(slave.try_clone()?),
        Stdio::from(slave.try_clone()?),
        Stdio::from(slave),
    ];
    let ends = Ends {
        stdin: writer,
        outputs: vec![(File::from(master.try_clone()?), "stdout", channel::STDOUT)],
        pty: Some(master),
    };
    Ok((child, ends))
}

/// Runs the container (`args.command`), logging to `args.log` (rotated as
/// the args say), serving attach sessions on `args.attach_socket` if given,
/// and recording how it ended in `args.exit_file` (JSON [`Exit`] plus
/// `finishedAt` in ns).
pub fn shim(args: &ShimArgs) -> std::io::Result<()> {
    let file = Arc::new(Mutex::new(RotatingLog::open(&args.log, args.rotation())?));
    let (program, argv) = args
        .command
        .split_first()
        .ok_or_else(|| std::io::Error::other("no command"))?;
    // Bound before the container starts: attach works once it runs.
    let listener = args
        .attach_socket
        .as_deref()
        .map(super::attach::bind)
        .transpose()?;
    let mut cmd = Command::new(program);
    cmd.args(argv);
    let (mut child, ends) = if args.tty {
        let ([i, o, e], ends) = terminal(args.stdin)?;
        cmd.stdin(i).stdout(o).stderr(e);
        let child = cmd.spawn()?;
        // The Command holds the terminal's slave: only the child may, so
        // that its end ends our reads (EIO).
        drop(cmd);
        (child, ends)
    } else {
        let stdin = if args.stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        };
        let mut child = cmd
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let file = |fd: Option<OwnedFd>| fd.map(File::from);
        let outputs = [
            file(child.stdout.take().map(OwnedFd::from)).map(|f| (f, "stdout", channel::STDOUT)),
            file(child.stderr.take().map(OwnedFd::from)).map(|f| (f, "stderr", channel::STDERR)),
        ];
        let ends = Ends {
            stdin: child
                .stdin
                .take()
                .map(|w| Box::new(w) as Box<dyn Write + Send>),
            outputs: outputs.into_iter().flatten().collect(),
            pty: None,
        };
        (child, ends)
    };
    // Attach: a small runtime of its own, only for containers served so.
    // Without it nobody can attach, and stdin (if any) stays open, unwritten.
    let (served, _unwritten_stdin) = match listener {
        Some(listener) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()?;
            let hub = Hub::new(ends.stdin, args.stdin_once, ends.pty.clone());
            listener.set_nonblocking(true)?;
            let listener = {
                let _in = runtime.enter();
                tokio::net::UnixListener::from_std(listener)?
            };
            runtime.spawn(super::attach::serve(listener, hub.clone()));
            (Some((runtime, hub)), None)
        }
        None => (None, ends.stdin),
    };
    let hub = served.as_ref().map(|(_, h)| h.clone());
    let pumps: Vec<_> = ends
        .outputs
        .into_iter()
        .map(|(from, stream, ch)| pump(from, stream, ch, file.clone(), hub.clone()))
        .collect();
    let status = child.wait()?;
    for t in pumps {
        let _ = t.join();
    }
    let oom = file.lock().is_ok_and(|f| f.oom_killed());
    let code = status.code().unwrap_or(137);
    let exit = Exit {
        code,
        reason: if oom {
            "OOMKilled".into()
        } else if code == 0 {
            "Completed".into()
        } else {
            "Error".into()
        },
    };
    let mut value = serde_json::to_value(&exit).unwrap_or_default();
    value["finishedAt"] = serde_json::json!(jiff::Timestamp::now().as_nanosecond() as i64);
    let tmp = args.exit_file.with_extension("tmp");
    std::fs::write(&tmp, value.to_string())?;
    std::fs::rename(&tmp, &args.exit_file)?;
    if let Some((runtime, hub)) = served {
        // Attached clients get the end of the output and the status.
        hub.end();
        hub.wait_sessions(SESSIONS_GRACE);
        runtime.shutdown_timeout(Duration::from_secs(1));
        if let Some(socket) = &args.attach_socket {
            let _ = std::fs::remove_file(socket);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cri_log_format() {
        let at = jiff::Timestamp::from_nanosecond(1_700_000_000_123_456_789).unwrap();
        assert_eq!(
            log_line("stdout", "hello", at),
            "2023-11-14T22:13:20.123456789Z stdout F hello\n"
        );
    }

    #[test]
    fn output_is_cut_into_lines_and_long_ones_into_pieces() {
        let mut s = LineSplitter::default();
        assert!(s.push(b"hel").is_empty());
        assert_eq!(
            s.push(b"lo\r\nworld\nmore"),
            [('F', "hello".to_string()), ('F', "world".to_string())]
        );
        assert_eq!(s.push(b"\n\n"), [('F', "more".into()), ('F', "".into())]);
        assert_eq!(s.finish(), None);
        // A terminal's prompt without a newline is logged at the end.
        s.push(b"/ # \r");
        assert_eq!(s.finish().as_deref(), Some("/ # "));
        // Longer than MAX_LINE: pieces, never splitting a character.
        let mut long = vec![b'a'; MAX_LINE - 1];
        long.extend_from_slice("é".as_bytes());
        long.extend_from_slice(b"tail\n");
        let out = s.push(&long);
        assert_eq!(
            out.len(),
            2,
            "{:?}",
            out.iter().map(|(t, l)| (t, l.len())).collect::<Vec<_>>()
        );
        assert_eq!((out[0].0, out[0].1.len()), ('P', MAX_LINE - 1));
        assert_eq!(out[1], ('F', "étail".to_string()));
        assert!(!out.iter().any(|(_, l)| l.contains('\u{FFFD}')));
    }

    #[test]
    fn the_shim_logs_both_streams_and_records_the_exit() {
        let dir = tempfile::tempdir().unwrap();
        let (log, exit) = (dir.path().join("c/0.log"), dir.path().join("exit.json"));
        let cmd = ["/bin/sh", "-c", "echo out; echo err >&2; exit 3"];
        shim(&ShimArgs::new(&log, &exit, &cmd)).unwrap();
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.lines().any(|l| l.ends_with(" stdout F out")), "{text}");
        assert!(text.lines().any(|l| l.ends_with(" stderr F err")), "{text}");
        let e: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&exit).unwrap()).unwrap();
        assert_eq!(
            (e["code"].as_i64(), e["reason"].as_str()),
            (Some(3), Some("Error"))
        );
        assert!(e["finishedAt"].as_i64().unwrap() > 0);
    }
    /// Every file of the log at `log`, current last, with its lines.
    fn files(log: &Path) -> Vec<(String, Vec<String>)> {
        let mut all = rotated_files(log).unwrap();
        all.push(log.to_path_buf());
        all.iter()
            .map(|p| {
                let name = p.file_name().unwrap().to_str().unwrap().to_string();
                let text = std::fs::read_to_string(p).unwrap();
                (name, text.lines().map(String::from).collect())
            })
            .collect()
    }

    #[test]
    fn the_log_rotates_at_the_max_size_and_keeps_max_files() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("c/0.log");
        let rotation = LogRotation {
            max_size: 200,
            max_files: 3,
        };
        let mut w = RotatingLog::open(&log, rotation).unwrap();
        // Each line is 30 (time) + 10 + 16 + 1 = 57 bytes: 3 per file.
        let t0 = jiff::Timestamp::from_nanosecond(1_767_323_045_123_456_789).unwrap(); // 2026-01-02T03:04:05.123456789Z
        assert_eq!(log_line("stdout", "line number 0000", t0).len(), 57);
        let mut written = Vec::new();
        for i in 0..20 {
            // Two rotations a second: the second one of a second gets `-1`.
            let at = t0 + jiff::SignedDuration::from_millis(i * 200);
            let msg = format!("line number {i:04}");
            w.write_line(if i % 2 == 0 { "stdout" } else { "stderr" }, &msg, at)
                .unwrap();
            written.push(msg);
            let now = files(&log);
            assert!(now.len() <= 3, "{i}: {now:?}");
            for (name, lines) in &now {
                let size: usize = lines.iter().map(|l| l.len() + 1).sum();
                assert!(size <= 200, "{name}: {size} bytes");
            }
        }
        let now = files(&log);
        assert_eq!(now.len(), 3, "{now:?}");
        // Rotated files are named as upstream's, in time order.
        let names: Vec<&str> = now.iter().map(|(n, _)| n.as_str()).collect();
        // Rotations at 3.0 s and 3.6 s after t0: the same second.
        assert_eq!(
            names,
            ["0.log.20260102-030408", "0.log.20260102-030408-1", "0.log"]
        );
        // What is left is the newest lines, whole, in order, in CRI format
        // (the oldest files went).
        let kept: Vec<String> = now.iter().flat_map(|(_, l)| l.clone()).collect();
        let texts: Vec<String> = kept
            .iter()
            .map(|l| {
                let mut parts = l.splitn(4, ' ');
                let time = parts.next().unwrap();
                assert!(time.parse::<jiff::Timestamp>().is_ok(), "{l}");
                assert!(matches!(parts.next(), Some("stdout" | "stderr")), "{l}");
                assert_eq!(parts.next(), Some("F"), "{l}");
                parts.next().unwrap().to_string()
            })
            .collect();
        assert_eq!(texts, written[written.len() - texts.len()..], "{kept:?}");
        assert_eq!(texts.last().unwrap(), "line number 0019");
        // 20 lines, 3 a file: 7 files were written, the current one has 2.
        assert_eq!(texts.len(), 3 + 3 + 2);
    }

    #[test]
    fn a_line_longer_than_the_max_size_gets_a_file_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("0.log");
        let rotation = LogRotation {
            max_size: 100,
            max_files: 5,
        };
        let mut w = RotatingLog::open(&log, rotation).unwrap();
        let at = jiff::Timestamp::UNIX_EPOCH;
        w.write_line("stdout", "short", at).unwrap();
        w.write_line("stdout", &"x".repeat(300), at).unwrap();
        w.write_line("stdout", "after", at).unwrap();
        let now = files(&log);
        let counts: Vec<usize> = now.iter().map(|(_, l)| l.len()).collect();
        assert_eq!(counts, [1, 1, 1], "{now:?}");
        assert_eq!(now[0].0, "0.log.19700101-000000");
        assert_eq!(now[1].0, "0.log.19700101-000000-1");
        assert!(now[1].1[0].ends_with(&"x".repeat(300)));
    }

    #[test]
    fn only_this_logs_rotated_files_count() {
        let dir = tempfile::tempdir().unwrap();
        for f in [
            "0.log.20260102-030405",
            "0.log.20260102-030405-2",
            "0.log.20260101-000000.gz",
            "0.log.20260102-030405-10",
            "0.log.tmp",
            "10.log.20260102-030405",
            "1.log",
            "0.log.2026010-0304050",
        ] {
            std::fs::write(dir.path().join(f), "").unwrap();
        }
        let names: Vec<String> = rotated_files(&dir.path().join("0.log"))
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "0.log.20260101-000000.gz",
                "0.log.20260102-030405",
                "0.log.20260102-030405-2",
                "0.log.20260102-030405-10",
            ]
        );
    }

    #[test]
    fn the_shim_rotates_a_chatty_containers_log() {
        let dir = tempfile::tempdir().unwrap();
        let (log, exit) = (dir.path().join("c/0.log"), dir.path().join("exit.json"));
        let cmd = [
            "/bin/sh",
            "-c",
            "i=0; while [ $i -lt 200 ]; do echo line $i; i=$((i+1)); done",
        ];
        let args = ShimArgs {
            log_max_size: 1000,
            log_max_files: 2,
            ..ShimArgs::new(&log, &exit, &cmd)
        };
        shim(&args).unwrap();
        let now = files(&log);
        assert_eq!(now.len(), 2, "{now:?}");
        let last = &now[1].1;
        assert!(
            last.last().unwrap().ends_with(" stdout F line 199"),
            "{last:?}"
        );
        // The two files hold the last lines, whole and in order.
        let kept: Vec<String> = now.iter().flat_map(|(_, l)| l.clone()).collect();
        let first: usize = kept[0].rsplit(' ').next().unwrap().parse().unwrap();
        for (k, l) in kept.iter().enumerate() {
            assert!(
                l.ends_with(&format!(" stdout F line {}", first + k)),
                "{l}: {now:?}"
            );
        }
        assert!(
            now.iter()
                .all(|(_, l)| l.iter().map(|x| x.len() + 1).sum::<usize>() <= 1000)
        );
        let e: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&exit).unwrap()).unwrap();
        assert_eq!(e["reason"].as_str(), Some("Completed"));
    }
}
