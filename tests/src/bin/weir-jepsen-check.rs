//! `weir-jepsen-check HISTORY.jsonl`: runs `weir_tests::jepsen::check` over a history written
//! as JSON lines (one operation a line, see `weir_tests::jepsen`), such as the Python
//! workload's (`tests/compat/test_partition_campaign.py`). Prints the report; exits 0 when
//! it is valid, 1 when it found anomalies, 2 when the file could not be read.

use std::fs::File;
use std::io::BufReader;
use std::process::ExitCode;

use weir_tests::jepsen::{check, read_history};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(path), None) = (args.next(), args.next()) else {
        eprintln!("usage: weir-jepsen-check HISTORY.jsonl");
        return ExitCode::from(2);
    };
    let history = match File::open(&path)
        .map_err(weir_tests::jepsen::HistoryError::from)
        .and_then(|file| read_history(BufReader::new(file)))
    {
        Ok(history) => history,
        Err(err) => {
            eprintln!("{path}: {err}");
            return ExitCode::from(2);
        }
    };
    let report = check(&history);
    print!("{report}");
    if report.is_valid() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
