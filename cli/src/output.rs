//! Text the commands print: results on stdout, notes and errors on stderr. A reader that goes
//! away (`weir topics list | head -1`) is a normal way to stop, not a failure: a write to a
//! closed stdout becomes [`CliError::OutputClosed`], which ends the command quietly with exit
//! code 0, and a closed stderr is ignored (nobody is left to tell). Nothing here panics on a
//! failed write, unlike `print!` and `eprintln!`, which the commands therefore do not use.

use std::fmt;
use std::io::{self, ErrorKind, Write};

use crate::error::{CliError, CliResult};

/// Writes `text` to stdout and flushes it.
///
/// # Errors
/// [`CliError::OutputClosed`] when the reader is gone, [`CliError::Io`] for other failures.
pub(crate) fn print(text: &str) -> CliResult {
    print_to(&mut io::stdout().lock(), text.as_bytes())
}

/// Writes `bytes` to `out` and flushes it, translating the failure as [`print`] does.
///
/// # Errors
/// As [`print`].
pub(crate) fn print_to(out: &mut impl Write, bytes: &[u8]) -> CliResult {
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(stdout_error)
}

/// A failed write to stdout: a closed pipe ends the command quietly, anything else fails it.
pub(crate) fn stdout_error(source: io::Error) -> CliError {
    if source.kind() == ErrorKind::BrokenPipe {
        CliError::OutputClosed
    } else {
        CliError::Io {
            context: "writing to stdout".to_owned(),
            source,
        }
    }
}

/// Writes one line to stderr; a failure is dropped, since stderr is where it would be told.
pub(crate) fn stderr_line(args: fmt::Arguments<'_>) {
    let mut err = io::stderr().lock();
    drop(writeln!(err, "{args}"));
}

/// `eprintln!` that never panics: a line on stderr, dropped if stderr is closed.
macro_rules! note {
    ($($arg:tt)*) => {
        $crate::output::stderr_line(format_args!($($arg)*))
    };
}
pub(crate) use note;

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer whose reader is gone.
    struct ClosedPipe;

    impl Write for ClosedPipe {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::from(ErrorKind::BrokenPipe))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_pipe_ends_quietly_and_other_failures_are_errors() {
        let closed = print_to(&mut ClosedPipe, b"x\n").expect_err("closed");
        assert!(matches!(closed, CliError::OutputClosed), "{closed:?}");
        assert_eq!(closed.exit_code(), 0);
        let full = stdout_error(io::Error::from(ErrorKind::StorageFull));
        assert!(matches!(full, CliError::Io { .. }), "{full:?}");
        let mut sink = Vec::new();
        print_to(&mut sink, b"fine\n").expect("a Vec takes everything");
        assert_eq!(sink, b"fine\n");
    }
}
