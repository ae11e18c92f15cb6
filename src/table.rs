//! A table as the terminal prints it and the HTML report shows it: one
//! builder per kind of result, two renderings.

/// Rows of cells under a header; the first `name_columns` hold names
/// (aligned left), the rest numbers (aligned right).
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub title: String,
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub name_columns: usize,
    /// Lines printed under the table (output rates, notes).
    pub footer: Vec<String>,
}

impl Table {
    pub fn new(title: impl Into<String>, header: &[&str], name_columns: usize) -> Table {
        Table {
            title: title.into(),
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
            name_columns,
            footer: Vec::new(),
        }
    }

    /// A Markdown table, columns padded to their widest cell.
    pub fn markdown(&self) -> String {
        let columns = self.header.len();
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(c))
                    .chain([&self.header[c]])
                    .map(|cell| cell.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: &[String]| {
            let padded: Vec<String> = (0..columns)
                .map(|c| {
                    let cell = cells.get(c).map_or("", String::as_str);
                    let w = widths[c];
                    if c < self.name_columns {
                        format!("{cell:<w$}")
                    } else {
                        format!("{cell:>w$}")
                    }
                })
                .collect();
            format!("| {} |\n", padded.join(" | "))
        };
        let mut out = line(&self.header);
        let rule: Vec<String> = widths
            .iter()
            .enumerate()
            .map(|(c, &w)| {
                if c < self.name_columns {
                    "-".repeat(w.max(1))
                } else {
                    format!("{}:", "-".repeat(w.saturating_sub(1)))
                }
            })
            .collect();
        out.push_str(&format!("| {} |\n", rule.join(" | ")));
        for r in &self.rows {
            out.push_str(&line(r));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_pads_names_left_and_numbers_right() {
        let mut t = Table::new("t", &["name", "ms"], 1);
        t.rows.push(vec!["a".into(), "1.5".into()]);
        t.rows.push(vec!["longer".into(), "12.25".into()]);
        assert_eq!(
            t.markdown(),
            "| name   |    ms |\n| ------ | ----: |\n| a      |   1.5 |\n| longer | 12.25 |\n"
        );
    }
}
