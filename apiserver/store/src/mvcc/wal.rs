//! The write-ahead log: what makes a write durable before it is acknowledged.
//!
//! Committing redb durably writes every copy-on-write page a batch touched,
//! scattered over the file, and syncs them all. The log instead appends one
//! small record per batch to a preallocated segment and syncs that: one
//! sequential write. redb then commits without syncing, and is made durable
//! now and then by a checkpoint (see `writer.rs`), after which the log up to
//! that point is deleted. This is how etcd works too (its WAL and bbolt).
//!
//! Layout: `<data-dir>/wal/<first sequence, 16 hex digits>.wal`, each
//! preallocated, holding records one after the other, then zeros:
//!
//! ```text
//! | payload length: u32 LE | crc32 of (sequence ++ payload): u32 LE | sequence: u64 LE | payload |
//! ```
//!
//! Sequences increase by one per record. Reading stops at a zero length (the
//! unused, preallocated rest) or at a record whose checksum does not match:
//! a record torn by a crash, which was never acknowledged since its sync had
//! not returned. New records always go to a new segment after a restart, so
//! nothing is ever appended behind a torn record.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

const HEADER_LEN: u64 = 16;

/// One record read back from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub sequence: u64,
    pub payload: Vec<u8>,
}

#[derive(Debug)]
struct Segment {
    first_sequence: u64,
    path: PathBuf,
}

pub(crate) struct Wal {
    dir: PathBuf,
    /// Every segment on disk, oldest first; the last one is `current`'s.
    segments: Vec<Segment>,
    current: Option<OpenSegment>,
    segment_size: u64,
    last_sequence: u64,
}

struct OpenSegment {
    file: File,
    offset: u64,
    capacity: u64,
}

impl Wal {
    /// Opens the log in `dir` and reads back every intact record.
    pub fn open(dir: &Path, segment_size: u64) -> io::Result<(Wal, Vec<Record>)> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let mut segments = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            let first = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".wal"))
                .and_then(|n| u64::from_str_radix(n, 16).ok());
            if let Some(first_sequence) = first {
                segments.push(Segment {
                    first_sequence,
                    path,
                });
            }
        }
        segments.sort_by_key(|s| s.first_sequence);

        let mut records: Vec<Record> = Vec::new();
        for (i, segment) in segments.iter().enumerate() {
            let (found, torn_at) = read_segment(&segment.path)?;
            if let (Some(first), Some(prev)) = (found.first(), records.last())
                && first.sequence != prev.sequence + 1
            {
                return Err(corrupt(format!(
                    "{}: sequence jumps from {} to {}",
                    segment.path.display(),
                    prev.sequence,
                    first.sequence
                )));
            }
            records.extend(found);
            if let Some(offset) = torn_at {
                if i + 1 < segments.len() {
                    return Err(corrupt(format!(
                        "{}: a damaged record is followed by more segments; the log is corrupt",
                        segment.path.display()
                    )));
                }
                // A record torn by a crash: cut it off for good, so that the
                // segments written after this restart follow a clean end.
                tracing::warn!(segment = %segment.path.display(), offset, "dropping a torn record at the end of the log");
                let file = OpenOptions::new().write(true).open(&segment.path)?;
                file.set_len(offset)?;
                file.sync_all()?;
            }
        }
        let last_sequence = records.last().map_or_else(
            || {
                segments
                    .last()
                    .map_or(0, |s| s.first_sequence.saturating_sub(1))
            },
            |r| r.sequence,
        );
        let wal = Wal {
            dir: dir.to_path_buf(),
            segments,
            current: None,
            segment_size,
            last_sequence,
        };
        Ok((wal, records))
    }

    pub fn last_sequence(&self) -> u64 {
        self.last_sequence
    }

    /// Appends a record and syncs it to disk. Returns its sequence.
    pub fn append(&mut self, payload: &[u8]) -> io::Result<u64> {
        let sequence = self.last_sequence + 1;
        let len = HEADER_LEN + payload.len() as u64;
        let fits = self
            .current
            .as_ref()
            .is_some_and(|c| c.offset + len <= c.capacity);
        if !fits {
            self.start_segment(sequence, len)?;
        }
        let Some(current) = self.current.as_mut() else {
            unreachable!("a segment was just started")
        };
        let mut record = Vec::with_capacity(len as usize);
        record.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        record.extend_from_slice(&checksum(sequence, payload).to_le_bytes());
        record.extend_from_slice(&sequence.to_le_bytes());
        record.extend_from_slice(payload);
        current.file.write_all_at(&record, current.offset)?;
        current.file.sync_data()?;
        current.offset += len;
        self.last_sequence = sequence;
        Ok(sequence)
    }

    /// A new preallocated segment, so that syncing an append writes data
    /// only, not the file's size.
    fn start_segment(&mut self, first_sequence: u64, at_least: u64) -> io::Result<()> {
        let path = self.dir.join(format!("{first_sequence:016x}.wal"));
        let file = OpenOptions::new()
            .create_new(true)
            .read(true)
            .write(true)
            .mode(0o600)
            .open(&path)?;
        let capacity = self.segment_size.max(at_least);
        if nix::fcntl::fallocate(
            &file,
            nix::fcntl::FallocateFlags::empty(),
            0,
            capacity as i64,
        )
        .is_err()
        {
            file.set_len(capacity)?; // filesystems without fallocate: a sparse file
        }
        file.sync_all()?;
        File::open(&self.dir)?.sync_all()?; // the new name itself must survive a crash
        self.segments.push(Segment {
            first_sequence,
            path,
        });
        self.current = Some(OpenSegment {
            file,
            offset: 0,
            capacity,
        });
        Ok(())
    }

    /// Deletes the segments whose every record is at or below `sequence`
    /// (made durable in the database by a checkpoint).
    pub fn release_through(&mut self, sequence: u64) -> io::Result<()> {
        let mut keep_from = 0;
        for i in 0..self.segments.len() {
            let is_current = i + 1 == self.segments.len() && self.current.is_some();
            let last = match self.segments.get(i + 1) {
                Some(next) => next.first_sequence.saturating_sub(1),
                None => self.last_sequence,
            };
            if is_current || last > sequence {
                break;
            }
            std::fs::remove_file(&self.segments[i].path)?;
            keep_from = i + 1;
        }
        self.segments.drain(..keep_from);
        Ok(())
    }

    #[cfg(test)]
    fn segment_count(&self) -> usize {
        self.segments.len()
    }
}

fn checksum(sequence: u64, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&sequence.to_le_bytes());
    hasher.update(payload);
    hasher.finalize()
}

fn corrupt(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// The intact records of one segment, and the offset of a damaged record
/// after them, if there is one.
fn read_segment(path: &Path) -> io::Result<(Vec<Record>, Option<u64>)> {
    let data = std::fs::read(path)?;
    let mut records = Vec::new();
    let mut at = 0usize;
    while at + HEADER_LEN as usize <= data.len() {
        let word =
            |from: usize| u32::from_le_bytes(data[from..from + 4].try_into().expect("4 bytes"));
        let len = word(at) as usize;
        let crc = word(at + 4);
        let sequence = u64::from_le_bytes(data[at + 8..at + 16].try_into().expect("8 bytes"));
        if len == 0 && crc == 0 && sequence == 0 {
            return Ok((records, None)); // the preallocated, unused rest
        }
        let start = at + HEADER_LEN as usize;
        let Some(payload) = data.get(start..start + len) else {
            return Ok((records, Some(at as u64)));
        };
        if checksum(sequence, payload) != crc {
            return Ok((records, Some(at as u64)));
        }
        records.push(Record {
            sequence,
            payload: payload.to_vec(),
        });
        at = start + len;
    }
    // A header cut short by the end of the file is a torn record too.
    Ok((records, (at < data.len()).then_some(at as u64)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payloads(records: &[Record]) -> Vec<String> {
        records
            .iter()
            .map(|r| String::from_utf8(r.payload.clone()).unwrap())
            .collect()
    }

    #[test]
    fn append_reopen_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, records) = Wal::open(dir.path(), 4096).unwrap();
        assert!(records.is_empty());
        for word in ["one", "two", "three"] {
            wal.append(word.as_bytes()).unwrap();
        }
        drop(wal);
        let (mut wal, records) = Wal::open(dir.path(), 4096).unwrap();
        assert_eq!(payloads(&records), ["one", "two", "three"]);
        assert_eq!(
            records.iter().map(|r| r.sequence).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        // After a restart, appends go to a new segment and sequences go on.
        assert_eq!(wal.append(b"four").unwrap(), 4);
        assert_eq!(wal.segment_count(), 2);
        drop(wal);
        let (_, records) = Wal::open(dir.path(), 4096).unwrap();
        assert_eq!(payloads(&records), ["one", "two", "three", "four"]);
    }

    #[test]
    fn a_torn_last_record_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(dir.path(), 4096).unwrap();
        wal.append(b"kept").unwrap();
        wal.append(b"torn by a crash").unwrap();
        let path = wal.segments[0].path.clone();
        drop(wal);
        // Damage the second record's payload, as a crash mid-write would.
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all_at(b"XX", HEADER_LEN + 4 + HEADER_LEN + 3)
            .unwrap();
        let (mut wal, records) = Wal::open(dir.path(), 4096).unwrap();
        assert_eq!(payloads(&records), ["kept"]);
        assert_eq!(
            wal.append(b"next").unwrap(),
            2,
            "the torn record's sequence is reused"
        );
        drop(wal);
        // And again: the cut-off record does not make the log look corrupt.
        for _ in 0..2 {
            let (_, records) = Wal::open(dir.path(), 4096).unwrap();
            assert_eq!(payloads(&records), ["kept", "next"]);
        }
    }

    #[test]
    fn damage_before_the_end_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(dir.path(), 64).unwrap();
        for i in 0..4 {
            wal.append(format!("record {i} with some length").as_bytes())
                .unwrap();
        }
        assert!(wal.segment_count() >= 2, "small segments rotate");
        let first = wal.segments[0].path.clone();
        drop(wal);
        let file = OpenOptions::new().write(true).open(&first).unwrap();
        file.write_all_at(b"X", HEADER_LEN + 2).unwrap();
        let err = Wal::open(dir.path(), 64)
            .err()
            .expect("corruption is reported");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn rotation_and_release() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(dir.path(), 64).unwrap();
        for i in 0..10 {
            wal.append(format!("record number {i:02}").as_bytes())
                .unwrap();
        }
        let before = wal.segment_count();
        assert!(before > 2);
        // A checkpoint at 6 frees segments holding only records <= 6.
        wal.release_through(6).unwrap();
        assert!(wal.segment_count() < before);
        drop(wal);
        let (_, records) = Wal::open(dir.path(), 64).unwrap();
        assert!(
            records.first().unwrap().sequence <= 7,
            "record 7 onwards is still there"
        );
        assert_eq!(records.last().unwrap().sequence, 10);
        // A record larger than a segment gets a segment of its own size.
        let (mut wal, _) = Wal::open(dir.path(), 64).unwrap();
        let big = vec![b'x'; 1000];
        wal.append(&big).unwrap();
        drop(wal);
        let (_, records) = Wal::open(dir.path(), 64).unwrap();
        assert_eq!(records.last().unwrap().payload.len(), 1000);
    }
}
