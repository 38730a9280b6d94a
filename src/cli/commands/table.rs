//! Plain-text tables for the terminal: columns padded to their widest cell, two spaces
//! apart, the last column unpadded and no trailing spaces.

/// The rows (the first is the header) as aligned lines.
pub fn render(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; columns];
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    for row in rows {
        let mut line = String::new();
        for (index, cell) in row.iter().enumerate() {
            if index + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  ", width = widths[index]));
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn columns_are_as_wide_as_their_widest_cell() {
        let rows = vec![
            vec!["ID".to_string(), "WHO".to_string(), "WHAT".to_string()],
            vec![
                "12".to_string(),
                "alice@laptop".to_string(),
                "~ service.web".to_string(),
            ],
            vec![String::new(), String::new(), "more".to_string()],
        ];
        assert_eq!(
            super::render(&rows),
            "ID  WHO           WHAT\n12  alice@laptop  ~ service.web\n                  more\n"
        );
    }
}
