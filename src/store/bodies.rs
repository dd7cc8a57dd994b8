//! Message sources outside sled: appended to segment files in `<data dir>/bodies`, with only
//! their place ([`Location`]) in sled.
//!
//! sled stores a value of 2 KB in about 1.8 times its size, never gives back what was
//! deleted, and every write of a body rewrites pages of its log; sources are written once,
//! read whole and deleted in arrival order (retention), which an append-only file does with
//! one write and frees with one unlink. So:
//!
//! - One segment is *active* at a time: a source is appended to it with a small header
//!   (magic, CRC-32 of the source, message id, length), and a segment that would grow past
//!   the segment size is closed and the next one started. Start-up always starts a new one,
//!   so nothing is ever appended after bytes a crash may have torn.
//! - The `segments` tree counts, for each segment, the sources it holds and their bytes; the
//!   store changes it in the transaction that adds or removes the message, so it never
//!   disagrees with the index. A segment without an entry holds nothing live.
//! - Durability: [`Bodies::sync`] `fdatasync`s every segment written since the last sync;
//!   the store calls it before sled's flush, so once a flush returns, every source the
//!   flushed index points to is on disk. A source appended but not yet indexed when the
//!   process dies is dead bytes, never seen.
//! - Reclaiming (the store's `reclaim_bodies`): a segment whose count reached zero is
//!   deleted once the deletions are flushed; one whose live bytes fell under half its size is
//!   compacted (its live sources are appended to the active segment, the index moved in a
//!   transaction that checks they were not deleted meanwhile, then it is deleted as empty).
//!   An insert holds the *gate* for reading from the append until its transaction commits;
//!   reclaiming holds it for writing while it deletes files, so it never deletes a segment
//!   whose sources are about to be indexed.
//!
//! Each source is checked against its header when read: a mismatch (a disk that returned
//! other bytes, or a source indexed by a background flush of sled's but torn by a power cut
//! before the server acknowledged it) is [`StoreError::Corrupt`], never wrong mail.

use std::fs::File;
use std::io::{BufReader, ErrorKind, IoSlice, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::StoreError;

/// The directory of the segments inside a data dir.
pub const BODIES_DIR: &str = "bodies";
/// The size past which a segment is closed.
pub const SEGMENT_BYTES: u64 = 64 << 20;

const MAGIC: [u8; 4] = *b"FMB1";
/// Magic, CRC-32, message id, length.
pub const HEADER: u64 = 4 + 4 + 8 + 4;
/// The suffix of segment file names (`0000000001.fmb`).
const SUFFIX: &str = ".fmb";

/// Where a message's source is: a segment, the offset of its header, the source's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub segment: u32,
    pub offset: u64,
    pub len: u32,
}

impl Location {
    /// 16 bytes: segment, offset, length, big-endian.
    pub fn encode(&self) -> [u8; 16] {
        let mut v = [0u8; 16];
        v[..4].copy_from_slice(&self.segment.to_be_bytes());
        v[4..12].copy_from_slice(&self.offset.to_be_bytes());
        v[12..].copy_from_slice(&self.len.to_be_bytes());
        v
    }

    pub fn decode(v: &[u8]) -> Result<Location, StoreError> {
        let bad = || StoreError::Codec("bad body location".into());
        let v: &[u8; 16] = v.try_into().map_err(|_| bad())?;
        Ok(Location {
            segment: u32::from_be_bytes(v[..4].try_into().map_err(|_| bad())?),
            offset: u64::from_be_bytes(v[4..12].try_into().map_err(|_| bad())?),
            len: u32::from_be_bytes(v[12..].try_into().map_err(|_| bad())?),
        })
    }

    /// The bytes it takes in its segment, header included.
    pub fn footprint(&self) -> u64 {
        HEADER + u64::from(self.len)
    }
}

/// A segment's key in the `segments` tree.
pub fn segment_key(segment: u32) -> [u8; 4] {
    segment.to_be_bytes()
}

/// What the `segments` tree holds for a segment: live sources and their bytes, headers
/// included.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Live {
    pub count: u64,
    pub bytes: u64,
}

impl Live {
    pub fn encode(&self) -> [u8; 16] {
        let mut v = [0u8; 16];
        v[..8].copy_from_slice(&self.count.to_be_bytes());
        v[8..].copy_from_slice(&self.bytes.to_be_bytes());
        v
    }

    pub fn decode(v: &[u8]) -> Live {
        let at = |i: usize| {
            v.get(i..i + 8)
                .and_then(|b| b.try_into().ok())
                .map_or(0, u64::from_be_bytes)
        };
        Live {
            count: at(0),
            bytes: at(8),
        }
    }
}

/// A record found by [`Bodies::scan`]: a message id and where its source is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    pub id: u64,
    pub at: Location,
}

#[derive(Debug)]
struct Writer {
    active: u32,
    file: Arc<File>,
    len: u64,
    /// Whether the active segment was written since the last sync.
    dirty: bool,
    /// Closed segments written since the last sync.
    closed: Vec<Arc<File>>,
}

/// The segment files of one store.
#[derive(Debug)]
pub struct Bodies {
    dir: PathBuf,
    segment_bytes: u64,
    writer: Mutex<Writer>,
    gate: RwLock<()>,
}

fn io_error(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::Body {
        path: path.to_path_buf(),
        source,
    }
}

impl Bodies {
    /// Opens the segments of `dir` (made if missing) and starts a new active segment after
    /// the highest of those found and `known` (the segments the index names).
    pub fn open(dir: &Path, segment_bytes: u64, known: Option<u32>) -> Result<Bodies, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
        let highest = Self::list(dir)?.into_iter().max().max(known).unwrap_or(0);
        let active = highest + 1;
        let path = segment_path(dir, active);
        let file = File::options()
            .create_new(true)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| io_error(&path, e))?;
        Ok(Bodies {
            dir: dir.to_path_buf(),
            segment_bytes: segment_bytes.max(1),
            writer: Mutex::new(Writer {
                active,
                file: Arc::new(file),
                len: 0,
                dirty: false,
                closed: Vec::new(),
            }),
            gate: RwLock::new(()),
        })
    }

    /// The segments in `dir`, by the numbers in their names.
    pub fn list(dir: &Path) -> Result<Vec<u32>, StoreError> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| io_error(dir, e))? {
            let entry = entry.map_err(|e| io_error(dir, e))?;
            let name = entry.file_name();
            if let Some(n) = name
                .to_str()
                .and_then(|n| n.strip_suffix(SUFFIX))
                .and_then(|n| n.parse().ok())
            {
                found.push(n);
            }
        }
        Ok(found)
    }

    fn writer(&self) -> std::sync::MutexGuard<'_, Writer> {
        // Every change to the writer leaves it consistent before anything that can panic.
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Held by an insert from its appends until its transaction has committed.
    pub fn gate(&self) -> RwLockReadGuard<'_, ()> {
        self.gate.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Held while segments are deleted: no insert is between its append and its commit.
    pub fn gate_closed(&self) -> RwLockWriteGuard<'_, ()> {
        self.gate.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The segment sources are appended to now.
    pub fn active(&self) -> u32 {
        self.writer().active
    }

    /// Appends sources (message id, source) in one write, closing the active segment first
    /// when they would take it past the segment size. Hold [`Bodies::gate`] until they are
    /// indexed.
    pub fn append(&self, sources: &[(u64, &[u8])]) -> Result<Vec<Location>, StoreError> {
        // Headers before the lock (the checksums are the work); the sources are written from
        // where they are, not copied into one buffer.
        let headers = sources
            .iter()
            .map(|(id, source)| header(*id, source))
            .collect::<Result<Vec<_>, _>>()?;
        let mut slices: Vec<IoSlice<'_>> = headers
            .iter()
            .zip(sources)
            .flat_map(|(h, (_, source))| [IoSlice::new(h), IoSlice::new(source)])
            .collect();
        let total: u64 = sources.iter().map(|(_, s)| HEADER + s.len() as u64).sum();
        let mut w = self.writer();
        if w.len > 0 && w.len + total > self.segment_bytes {
            self.roll(&mut w)?;
        }
        let mut offset = w.len;
        let at = sources
            .iter()
            .map(|(_, source)| {
                let at = Location {
                    segment: w.active,
                    offset,
                    len: source.len() as u32,
                };
                offset += at.footprint();
                at
            })
            .collect();
        w.dirty = true;
        write_all_at(&w.file, &mut slices, w.len)
            .map_err(|e| io_error(&segment_path(&self.dir, w.active), e))?;
        // Only now: a failed write leaves nothing counted, and the next one writes over it.
        w.len += total;
        Ok(at)
    }

    fn roll(&self, w: &mut Writer) -> Result<(), StoreError> {
        let next = w.active + 1;
        let path = segment_path(&self.dir, next);
        let file = File::options()
            .create_new(true)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| io_error(&path, e))?;
        let old = std::mem::replace(&mut w.file, Arc::new(file));
        if std::mem::take(&mut w.dirty) {
            w.closed.push(old);
        }
        w.active = next;
        w.len = 0;
        Ok(())
    }

    /// Makes every append made before the call durable. Blocking.
    pub fn sync(&self) -> Result<(), StoreError> {
        let (files, active) = {
            let mut w = self.writer();
            let active = std::mem::take(&mut w.dirty).then(|| w.file.clone());
            (std::mem::take(&mut w.closed), active)
        };
        let mut failed = None;
        for f in files.iter().chain(&active) {
            if let Err(e) = f.sync_data() {
                failed.get_or_insert(e);
            }
        }
        match failed {
            None => Ok(()),
            Some(e) => {
                // Still to be made durable: the next sync tries again.
                let mut w = self.writer();
                w.closed.extend(files);
                if active.is_some() {
                    w.dirty = true;
                }
                Err(io_error(&self.dir, e))
            }
        }
    }

    /// Reads and checks the source of message `id` at `at`. `Ok(None)` when its segment is
    /// gone (compacted meanwhile: read its location again).
    pub fn read(&self, id: u64, at: Location) -> Result<Option<Vec<u8>>, StoreError> {
        let path = segment_path(&self.dir, at.segment);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error(&path, e)),
        };
        let mut buf = vec![0u8; at.footprint() as usize];
        let corrupt = |detail: String| StoreError::Corrupt {
            path: path.clone(),
            detail,
        };
        match file.read_exact_at(&mut buf, at.offset) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
                return Err(corrupt(format!(
                    "the source of message {id} ends early at offset {}",
                    at.offset
                )));
            }
            Err(e) => return Err(io_error(&path, e)),
        }
        let source = buf.split_off(HEADER as usize);
        let header = Header::parse(&buf);
        if header
            != Some(Header {
                crc: crc32fast::hash(&source),
                id,
                len: at.len,
            })
        {
            return Err(corrupt(format!(
                "the source of message {id} at offset {} does not match its header",
                at.offset
            )));
        }
        Ok(Some(source))
    }

    /// Walks the records of a closed segment in order, calling `f` with each; stops at the
    /// first that is not whole (a torn tail). Reads through a buffer, never the whole file.
    pub fn scan(
        &self,
        segment: u32,
        f: &mut dyn FnMut(Record) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let path = segment_path(&self.dir, segment);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_error(&path, e)),
        };
        let mut r = BufReader::with_capacity(1 << 20, file);
        let mut offset = 0u64;
        let mut header = [0u8; HEADER as usize];
        loop {
            match r.read_exact(&mut header) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(()),
                Err(e) => return Err(io_error(&path, e)),
            }
            let Some(h) = Header::parse(&header) else {
                return Ok(());
            };
            let at = Location {
                segment,
                offset,
                len: h.len,
            };
            // Skip the source: the caller reads the ones it keeps through `read`, checked.
            let skipped = std::io::copy(&mut r.by_ref().take(h.len.into()), &mut std::io::sink())
                .map_err(|e| io_error(&path, e))?;
            if skipped < u64::from(h.len) {
                return Ok(());
            }
            f(Record { id: h.id, at })?;
            offset += at.footprint();
        }
    }

    /// The size of a segment's file (0 when it is gone).
    pub fn file_len(&self, segment: u32) -> Result<u64, StoreError> {
        let path = segment_path(&self.dir, segment);
        match std::fs::metadata(&path) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(0),
            Err(e) => Err(io_error(&path, e)),
        }
    }

    /// Deletes a closed segment's file. Hold [`Bodies::gate_closed`].
    pub fn remove(&self, segment: u32) -> Result<(), StoreError> {
        let path = segment_path(&self.dir, segment);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(&path, e)),
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Header {
    crc: u32,
    id: u64,
    len: u32,
}

impl Header {
    fn parse(b: &[u8]) -> Option<Header> {
        if b.get(..4)? != MAGIC {
            return None;
        }
        Some(Header {
            crc: u32::from_be_bytes(b.get(4..8)?.try_into().ok()?),
            id: u64::from_be_bytes(b.get(8..16)?.try_into().ok()?),
            len: u32::from_be_bytes(b.get(16..20)?.try_into().ok()?),
        })
    }
}

/// The header of a source: magic, CRC-32, message id, length.
fn header(id: u64, source: &[u8]) -> Result<[u8; HEADER as usize], StoreError> {
    let len = u32::try_from(source.len()).map_err(|_| {
        StoreError::Codec(format!("a source of {} bytes is too long", source.len()))
    })?;
    let mut h = [0u8; HEADER as usize];
    h[..4].copy_from_slice(&MAGIC);
    h[4..8].copy_from_slice(&crc32fast::hash(source).to_be_bytes());
    h[8..16].copy_from_slice(&id.to_be_bytes());
    h[16..].copy_from_slice(&len.to_be_bytes());
    Ok(h)
}

/// Writes every slice at `offset` on, with as few `pwritev` calls as the kernel allows.
fn write_all_at(file: &File, mut bufs: &mut [IoSlice<'_>], mut offset: u64) -> std::io::Result<()> {
    /// Linux's `IOV_MAX`.
    const MAX_SLICES: usize = 1024;
    IoSlice::advance_slices(&mut bufs, 0);
    while !bufs.is_empty() {
        let n = bufs.len().min(MAX_SLICES);
        match rustix::io::pwritev(file, &bufs[..n], offset) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(written) => {
                offset += written as u64;
                IoSlice::advance_slices(&mut bufs, written);
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn segment_path(dir: &Path, segment: u32) -> PathBuf {
    dir.join(format!("{segment:010}{SUFFIX}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &Path, segment_bytes: u64) -> Bodies {
        Bodies::open(dir, segment_bytes, None).unwrap()
    }

    #[test]
    fn sources_read_back_across_segments_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let b = open(dir.path(), 100);
        let a = b.append(&[(1, b"first"), (2, b"second")]).unwrap();
        assert_eq!(a[0].segment, 1);
        assert_eq!(a[1].offset, HEADER + 5);
        // Would pass 100 bytes: a new segment.
        let c = b.append(&[(3, &[7u8; 70])]).unwrap();
        assert_eq!(c[0].segment, 2);
        assert_eq!(c[0].offset, 0);
        b.sync().unwrap();
        assert_eq!(b.read(1, a[0]).unwrap().unwrap(), b"first");
        assert_eq!(b.read(2, a[1]).unwrap().unwrap(), b"second");
        assert_eq!(b.read(3, c[0]).unwrap().unwrap(), vec![7u8; 70]);
        drop(b);
        // A reopen starts a segment after every one found.
        let b = open(dir.path(), 100);
        assert_eq!(b.active(), 3);
        assert_eq!(b.read(2, a[1]).unwrap().unwrap(), b"second");
        let mut seen = Vec::new();
        b.scan(1, &mut |r| {
            seen.push(r);
            Ok(())
        })
        .unwrap();
        assert_eq!(
            seen,
            [Record { id: 1, at: a[0] }, Record { id: 2, at: a[1] }]
        );
    }

    #[test]
    fn a_batch_of_more_slices_than_one_write_takes_is_written_whole() {
        let dir = tempfile::tempdir().unwrap();
        let b = open(dir.path(), 1 << 30);
        let sources: Vec<(u64, Vec<u8>)> = (0..700u64)
            .map(|id| {
                (
                    id,
                    format!("source {id}")
                        .repeat(id as usize % 7 + 1)
                        .into_bytes(),
                )
            })
            .collect();
        let refs: Vec<(u64, &[u8])> = sources.iter().map(|(id, s)| (*id, &s[..])).collect();
        let at = b.append(&refs).unwrap();
        let next = b.append(&[(700, b"after")]).unwrap()[0];
        assert_eq!(next.offset, at[699].offset + at[699].footprint());
        for ((id, source), at) in sources.iter().zip(at) {
            assert_eq!(b.read(*id, at).unwrap().unwrap(), *source);
        }
    }

    #[test]
    fn a_damaged_or_mismatched_source_is_an_error_not_mail() {
        let dir = tempfile::tempdir().unwrap();
        let b = open(dir.path(), 1 << 20);
        let at = b.append(&[(9, b"hello world")]).unwrap()[0];
        assert!(matches!(b.read(8, at), Err(StoreError::Corrupt { .. })));
        let file = File::options()
            .write(true)
            .open(segment_path(dir.path(), at.segment))
            .unwrap();
        file.write_all_at(b"J", at.offset + HEADER).unwrap();
        let e = b.read(9, at).unwrap_err();
        assert!(matches!(e, StoreError::Corrupt { .. }), "{e}");
        let past = Location {
            offset: 1_000,
            ..at
        };
        assert!(matches!(b.read(9, past), Err(StoreError::Corrupt { .. })));
        let gone = Location { segment: 77, ..at };
        assert!(b.read(9, gone).unwrap().is_none());
    }

    #[test]
    fn a_scan_stops_at_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let b = open(dir.path(), 1 << 20);
        b.append(&[(1, b"whole"), (2, b"torn off")]).unwrap();
        let path = segment_path(dir.path(), 1);
        let len = std::fs::metadata(&path).unwrap().len();
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 3)
            .unwrap();
        let mut ids = Vec::new();
        b.scan(1, &mut |r| {
            ids.push(r.id);
            Ok(())
        })
        .unwrap();
        assert_eq!(ids, [1]);
    }

    #[test]
    fn locations_and_counts_round_trip() {
        let at = Location {
            segment: 7,
            offset: 1 << 40,
            len: 12345,
        };
        assert_eq!(Location::decode(&at.encode()).unwrap(), at);
        assert!(Location::decode(b"short").is_err());
        let live = Live {
            count: 3,
            bytes: 99,
        };
        assert_eq!(Live::decode(&live.encode()), live);
        assert_eq!(Live::decode(b""), Live::default());
    }
}
