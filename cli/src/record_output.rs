//! What `weir consume` writes: record lines on stdout, with a count of which records' lines
//! reached the reader, so that a group commits exactly those when the output stops.
//!
//! Lines are rendered into a buffer and written straight to the file descriptor (no hidden
//! buffering by the standard library), at the latest when the buffer holds [`FLUSH_BYTES`]
//! and after every poll. `written` counts the bytes the OS accepted. When the reader of a pipe
//! goes away (`| head -3`), a write fails with EPIPE, or, while no records come, polling the
//! descriptor shows the pipe broken. Then the pipe may still hold bytes the OS accepted but
//! the reader never took: their count (FIONREAD on the pipe) is subtracted, and the records
//! whose lines were not wholly taken are handed back ([`RecordOutput::not_read`]) so that the
//! consumer is moved back to them before it commits.
//!
//! Invariants: `lines` is in write order and holds every line that is in the buffer or was
//! written within the last `capacity` bytes (older ones are certainly read: a pipe holds at
//! most `capacity` unread bytes); each line's `end` is its position after its newline in
//! the whole output, so `end <= written + buf.len()`.

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::{self, ErrorKind, Write};
use std::os::fd::AsFd;

use weir_client::{ConsumerRecord, TopicPartition};

use crate::args::Format;
use crate::format::write_record;

/// Rendered bytes written at once (fewer system calls than one per line).
const FLUSH_BYTES: usize = 64 << 10;
/// What a pipe holds when its size cannot be asked (Linux's default).
const DEFAULT_PIPE_BYTES: u64 = 64 << 10;

/// Where record lines go, and what can be known of its reader.
pub(crate) trait Destination: Write {
    /// Bytes written but not taken by the reader (a pipe's unread bytes; 0 when unknown).
    fn unread_bytes(&self) -> u64;
    /// Whether the reader is known to be gone without writing (a pipe with no read end).
    fn reader_gone(&self) -> bool;
    /// The most bytes that can be written and still unread (a pipe's size; 0 otherwise).
    fn capacity(&self) -> u64;
}

/// The process's stdout, written without buffering.
#[derive(Debug)]
pub(crate) struct Stdout {
    file: File,
    /// Whether it is a pipe (FIFO): only then are unread bytes and a gone reader knowable.
    pipe: bool,
    /// The pipe's size.
    capacity: u64,
}

impl Stdout {
    /// A second descriptor for stdout.
    ///
    /// # Errors
    /// When the descriptor cannot be duplicated.
    pub(crate) fn open() -> io::Result<Self> {
        let fd = io::stdout().as_fd().try_clone_to_owned()?;
        let pipe = rustix::fs::fstat(&fd).is_ok_and(|st| {
            rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Fifo
        });
        let capacity = if pipe { pipe_size(&fd) } else { 0 };
        Ok(Self {
            file: File::from(fd),
            pipe,
            capacity,
        })
    }
}

#[cfg(target_os = "linux")]
fn pipe_size(fd: &impl AsFd) -> u64 {
    rustix::pipe::fcntl_getpipe_size(fd)
        .ok()
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(DEFAULT_PIPE_BYTES)
}

#[cfg(not(target_os = "linux"))]
fn pipe_size(_fd: &impl AsFd) -> u64 {
    DEFAULT_PIPE_BYTES
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Destination for Stdout {
    fn unread_bytes(&self) -> u64 {
        if !self.pipe {
            return 0;
        }
        // Unknowable: count everything as read, as before this was measured.
        rustix::io::ioctl_fionread(&self.file).unwrap_or(0)
    }

    fn reader_gone(&self) -> bool {
        if !self.pipe {
            return false;
        }
        let mut fds = [rustix::event::PollFd::new(
            &self.file,
            rustix::event::PollFlags::OUT,
        )];
        let now = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // A pipe without readers polls as an error condition.
        rustix::event::poll(&mut fds, Some(&now)).is_ok_and(|_| {
            fds[0]
                .revents()
                .intersects(rustix::event::PollFlags::ERR | rustix::event::PollFlags::HUP)
        })
    }

    fn capacity(&self) -> u64 {
        self.capacity
    }
}

/// Why writing stopped.
#[derive(Debug)]
pub(crate) enum Stop {
    /// The reader went away: a normal way to stop.
    ReaderGone,
    /// Another write failure.
    Failed(io::Error),
}

/// One line written or waiting to be.
#[derive(Debug)]
struct Line {
    tp: TopicPartition,
    offset: i64,
    /// Position after its newline in the whole output.
    end: u64,
}

/// Record lines on their way to a reader.
#[derive(Debug)]
pub(crate) struct RecordOutput<D> {
    dest: D,
    buf: Vec<u8>,
    lines: VecDeque<Line>,
    /// Bytes the destination accepted.
    written: u64,
    /// Set once the reader is known to be gone.
    gone: bool,
}

impl<D: Destination> RecordOutput<D> {
    /// Writes to `dest`.
    pub(crate) fn new(dest: D) -> Self {
        Self {
            dest,
            buf: Vec::with_capacity(FLUSH_BYTES),
            lines: VecDeque::new(),
            written: 0,
            gone: false,
        }
    }

    /// Renders `record` as one line, writing the buffer out when it is full.
    ///
    /// # Errors
    /// The reader is gone, or writing failed.
    pub(crate) fn push(
        &mut self,
        record: &ConsumerRecord,
        format: Format,
        key_separator: &str,
    ) -> Result<(), Stop> {
        let rendered = write_record(&mut self.buf, record, format, key_separator);
        // Writing to a Vec fails only if serialization does, which leaves a partial line.
        if let Err(err) = rendered {
            return Err(Stop::Failed(err));
        }
        self.lines.push_back(Line {
            tp: record.topic_partition(),
            offset: record.offset,
            end: self.written + self.buf.len() as u64,
        });
        if self.buf.len() >= FLUSH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes out everything rendered.
    ///
    /// # Errors
    /// The reader is gone, or writing failed.
    pub(crate) fn flush(&mut self) -> Result<(), Stop> {
        if self.gone {
            return Err(Stop::ReaderGone);
        }
        while !self.buf.is_empty() {
            match self.dest.write(&self.buf) {
                Ok(0) => return Err(Stop::Failed(ErrorKind::WriteZero.into())),
                Ok(n) => {
                    self.written += n as u64;
                    self.buf.drain(..n);
                }
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                Err(err) if err.kind() == ErrorKind::BrokenPipe => {
                    self.gone = true;
                    return Err(Stop::ReaderGone);
                }
                Err(err) => return Err(Stop::Failed(err)),
            }
        }
        // Lines that far back are out of the pipe, so certainly read.
        let read = self.written.saturating_sub(self.dest.capacity());
        while self.lines.front().is_some_and(|l| l.end <= read) {
            self.lines.pop_front();
        }
        Ok(())
    }

    /// Whether the reader is gone, asked without writing (checked while no records come).
    pub(crate) fn reader_gone(&mut self) -> bool {
        if !self.gone && self.dest.reader_gone() {
            self.gone = true;
        }
        self.gone
    }

    /// For each partition with a record whose line the reader did not take, the offset of
    /// the first such record. While the reader is there, that is what was not written yet;
    /// once it is gone, also what was written but left unread in the pipe.
    pub(crate) fn not_read(&self) -> BTreeMap<TopicPartition, i64> {
        let unread = if self.gone {
            self.dest.unread_bytes().min(self.written)
        } else {
            0
        };
        let taken = self.written - unread;
        let mut first = BTreeMap::new();
        for line in self.lines.iter().filter(|l| l.end > taken) {
            first.entry(line.tp.clone()).or_insert(line.offset);
        }
        first
    }

    /// How many lines are tracked (for tests of the bound).
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.lines.len()
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    /// A pipe of `capacity` bytes whose reader takes `read` bytes and is gone once `closed`
    /// or once `limit` bytes were accepted.
    #[derive(Debug)]
    struct FakePipe {
        accepted: u64,
        capacity: u64,
        read: u64,
        closed: bool,
        limit: u64,
    }

    fn pipe(capacity: u64, limit: u64) -> FakePipe {
        FakePipe {
            accepted: 0,
            capacity,
            read: 0,
            closed: false,
            limit,
        }
    }

    impl Write for FakePipe {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.closed || self.accepted >= self.limit {
                self.closed = true;
                return Err(ErrorKind::BrokenPipe.into());
            }
            let n = (buf.len() as u64).min(self.limit - self.accepted);
            self.accepted += n;
            Ok(usize::try_from(n).expect("small"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Destination for FakePipe {
        fn unread_bytes(&self) -> u64 {
            self.accepted - self.read
        }
        fn reader_gone(&self) -> bool {
            self.closed
        }
        fn capacity(&self) -> u64 {
            self.capacity
        }
    }

    fn record(partition: i32, offset: i64) -> ConsumerRecord {
        ConsumerRecord {
            topic: "t".into(),
            partition,
            offset,
            timestamp: 0,
            key: None,
            value: Some(Bytes::from(format!("{offset:04}"))),
            headers: Vec::new(),
        }
    }

    #[test]
    fn what_the_reader_left_in_the_pipe_is_not_counted_as_read() {
        let mut out = RecordOutput::new(pipe(1 << 20, u64::MAX));
        for offset in 0..10 {
            let partition = i32::try_from(offset % 2).expect("small");
            out.push(&record(partition, offset), Format::Value, "")
                .expect("open");
        }
        out.flush().expect("open");
        assert!(out.not_read().is_empty(), "the reader is still there");
        // Each line is 5 bytes; the reader took 3 lines and 2 bytes of the fourth, then left.
        out.dest.read = 17;
        out.dest.closed = true;
        assert!(out.reader_gone());
        out.push(&record(0, 10), Format::Value, "")
            .expect("buffered");
        assert!(matches!(out.flush(), Err(Stop::ReaderGone)));
        let want: BTreeMap<_, _> = [
            (TopicPartition::new("t", 1), 3),
            (TopicPartition::new("t", 0), 4),
        ]
        .into_iter()
        .collect();
        assert_eq!(out.not_read(), want);
    }

    #[test]
    fn a_partial_write_then_epipe_keeps_the_lines_not_wholly_written() {
        // 12 bytes go (two lines and two bytes of the third), all read; then EPIPE.
        let mut out = RecordOutput::new(pipe(1 << 20, 12));
        for offset in 0..4 {
            out.push(&record(0, offset), Format::Value, "")
                .expect("open");
        }
        out.dest.read = 12;
        assert!(matches!(out.flush(), Err(Stop::ReaderGone)));
        assert_eq!(
            out.not_read().get(&TopicPartition::new("t", 0)),
            Some(&2),
            "the third line was cut"
        );
    }

    #[test]
    fn lines_older_than_the_pipe_are_forgotten() {
        let mut out = RecordOutput::new(pipe(50, u64::MAX));
        for offset in 0..1000 {
            out.push(&record(0, offset), Format::Value, "")
                .expect("open");
        }
        out.flush().expect("open");
        // 50 bytes of 5-byte lines may still be unread: at most 10 lines kept.
        assert!(out.tracked() <= 10, "{}", out.tracked());
    }
}
