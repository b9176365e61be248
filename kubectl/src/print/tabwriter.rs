//! Columns as kubectl aligns them: Go's `text/tabwriter` with minwidth 6,
//! padding 3, space padding, and the last cell of a line not padded.

/// The width a cell shows: its characters without ANSI colour sequences
/// (`ESC [ … m`), so coloured cells line up with plain ones.
pub fn visible_width(cell: &str) -> usize {
    let mut n = 0;
    let mut chars = cell.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            n += 1;
        }
    }
    n
}

/// Renders `rows` (the header included) as aligned lines.
pub fn render(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; columns];
    for row in rows {
        // A line's last cell is not part of a column (tabwriter only
        // aligns tab-terminated cells).
        for (i, cell) in row.iter().enumerate().take(row.len().saturating_sub(1)) {
            widths[i] = widths[i].max((visible_width(cell) + 3).max(6));
        }
    }
    let mut out = String::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            out.push_str(cell);
            if i + 1 < row.len() {
                let pad = widths[i] - visible_width(cell);
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[&str]) -> Vec<String> {
        cells.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn colour_does_not_count_as_width() {
        let green = "\x1b[0;32mReady\x1b[0m";
        assert_eq!(visible_width(green), 5);
        let out = render(&[row(&["STATUS", "AGE"]), row(&[green, "5s"])]);
        assert_eq!(out, format!("STATUS   AGE\n{green}    5s\n"));
    }

    #[test]
    fn three_spaces_after_the_widest_cell_and_none_after_the_last() {
        let out = render(&[row(&["NAME", "READY", "AGE"]), row(&["web-1", "1/1", "5s"])]);
        assert_eq!(out, "NAME    READY   AGE\nweb-1   1/1     5s\n");
    }

    #[test]
    fn narrow_columns_are_six_wide() {
        let out = render(&[row(&["A", "B"]), row(&["x", "y"])]);
        assert_eq!(out, "A     B\nx     y\n");
    }
}
