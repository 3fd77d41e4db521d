//! Tables: aligned columns under a header for a terminal, tab-separated rows without a header
//! for a pipe, so scripts read a plain and stable format while people read a table.

use std::io::IsTerminal;

/// How a table is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    /// A header and padded columns (numbers right-aligned).
    Aligned,
    /// One tab-separated line per row, no header.
    Plain,
}

impl Style {
    /// Aligned when stdout is a terminal, plain otherwise.
    pub(crate) fn for_stdout() -> Self {
        if std::io::stdout().is_terminal() {
            Self::Aligned
        } else {
            Self::Plain
        }
    }
}

/// Rows of cells under a header.
#[derive(Debug, Clone)]
pub(crate) struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table with these column names.
    pub(crate) fn new(header: &[&str]) -> Self {
        Self {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (missing cells are empty, extra ones dropped).
    pub(crate) fn row(&mut self, cells: Vec<String>) {
        let mut cells = cells;
        cells.resize(self.header.len(), String::new());
        self.rows.push(cells);
    }

    /// Whether it has no rows.
    pub(crate) fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as text, each line ending in a newline.
    pub(crate) fn render(&self, style: Style) -> String {
        match style {
            Style::Plain => self
                .rows
                .iter()
                .map(|r| format!("{}\n", r.join("\t")))
                .collect(),
            Style::Aligned => self.aligned(),
        }
    }

    fn aligned(&self) -> String {
        let widths: Vec<usize> = (0..self.header.len())
            .map(|c| {
                std::iter::once(&self.header[c])
                    .chain(self.rows.iter().map(|r| &r[c]))
                    .map(|s| s.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        // A column is numeric when every cell is: those are right-aligned.
        let numeric: Vec<bool> = (0..self.header.len())
            .map(|c| {
                !self.rows.is_empty()
                    && self
                        .rows
                        .iter()
                        .all(|r| r[c].parse::<f64>().is_ok() || r[c] == "-")
            })
            .collect();
        let mut out = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                if c > 0 {
                    line.push_str("  ");
                }
                let pad = widths[c].saturating_sub(cell.chars().count());
                if numeric[c] {
                    line.extend(std::iter::repeat_n(' ', pad));
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        let mut t = Table::new(&["TOPIC", "PARTITIONS"]);
        t.row(vec!["orders".into(), "12".into()]);
        t.row(vec!["événements".into(), "3".into()]);
        t
    }

    #[test]
    fn a_terminal_gets_aligned_columns_under_a_header() {
        assert_eq!(
            sample().render(Style::Aligned),
            "TOPIC       PARTITIONS\n\
             orders              12\n\
             événements           3\n"
        );
    }

    #[test]
    fn a_pipe_gets_tab_separated_rows_without_a_header() {
        assert_eq!(sample().render(Style::Plain), "orders\t12\névénements\t3\n");
    }

    #[test]
    fn short_rows_are_padded_and_empty_tables_have_only_a_header() {
        let mut t = Table::new(&["A", "B"]);
        assert_eq!(t.render(Style::Aligned), "A  B\n");
        assert_eq!(t.render(Style::Plain), "");
        t.row(vec!["x".into()]);
        assert_eq!(t.render(Style::Plain), "x\t\n");
    }
}
