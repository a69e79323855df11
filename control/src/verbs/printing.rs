//! Output as kubectl prints it: Go's `text/tabwriter` column layout (kubectl's `get` uses
//! minimum width 6 and padding 3, `describe` and `rollout history` padding 2), server-side
//! `meta.k8s.io/v1` Tables turned into those columns, and objects as JSON (four-space indent)
//! or YAML.

use serde_json::Value;

/// `kubectl get`'s tabwriter: minimum cell width 6, 3 spaces of padding.
pub const GET_LAYOUT: Layout = Layout {
    min_width: 6,
    padding: 3,
};
/// `kubectl describe`'s and `rollout history`'s: no minimum, 2 spaces of padding.
pub const DESCRIBE_LAYOUT: Layout = Layout {
    min_width: 0,
    padding: 2,
};

/// A tabwriter's cell geometry.
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    pub min_width: usize,
    pub padding: usize,
}

/// Lays out tab-separated text as Go's `tabwriter` does: a cell is text ended by a tab; a
/// column block is a run of consecutive lines that have a cell in that column, and each block
/// is as wide as its widest cell plus padding. The last cell of a line is never padded.
/// `remembered` (kubectl's `RememberWidths`, used by `get -w`) keeps columns from shrinking
/// between calls.
pub fn tabwrite(text: &str, layout: Layout, remembered: Option<&mut Vec<usize>>) -> String {
    let lines: Vec<Vec<&str>> = text
        .strip_suffix('\n')
        .unwrap_or(text)
        .split('\n')
        .map(|l| l.split('\t').collect())
        .collect();
    let mut out = String::with_capacity(text.len() * 2);
    let mut writer = Tab {
        lines: &lines,
        layout,
        remembered,
        out: &mut out,
    };
    let mut widths = Vec::new();
    writer.block(&mut widths, 0, lines.len());
    out
}

struct Tab<'a, 'b> {
    lines: &'a [Vec<&'a str>],
    layout: Layout,
    remembered: Option<&'b mut Vec<usize>>,
    out: &'b mut String,
}

impl Tab<'_, '_> {
    /// Go's `Writer.format`: finds the blocks of column `widths.len()` among the lines, sizes
    /// each, and recurses for the columns to its right.
    fn block(&mut self, widths: &mut Vec<usize>, mut line0: usize, line1: usize) {
        let column = widths.len();
        let mut this = line0;
        while this < line1 {
            if column + 1 >= self.lines[this].len() {
                this += 1;
                continue;
            }
            self.write(widths, line0, this);
            line0 = this;
            let mut width = self.layout.min_width;
            while this < line1 && column + 1 < self.lines[this].len() {
                width = width.max(cell_width(self.lines[this][column]) + self.layout.padding);
                this += 1;
            }
            if let Some(remembered) = self.remembered.as_deref_mut() {
                if remembered.len() <= column {
                    remembered.resize(column + 1, 0);
                }
                width = width.max(remembered[column]);
                remembered[column] = width;
            }
            widths.push(width);
            self.block(widths, line0, this);
            widths.pop();
            line0 = this;
        }
        self.write(widths, line0, line1);
    }

    fn write(&mut self, widths: &[usize], from: usize, to: usize) {
        for line in &self.lines[from..to] {
            for (j, cell) in line.iter().enumerate() {
                self.out.push_str(cell);
                if j + 1 < line.len()
                    && let Some(w) = widths.get(j)
                {
                    let pad = w.saturating_sub(cell_width(cell));
                    self.out.extend(std::iter::repeat_n(' ', pad));
                }
            }
            self.out.push('\n');
        }
    }
}

/// Width in characters, as Go counts runes.
fn cell_width(s: &str) -> usize {
    s.chars().count()
}

/// How to turn a Table into lines.
#[derive(Clone, Debug, Default)]
pub struct TableOptions {
    /// Include priority-1 (`-o wide`) columns.
    pub wide: bool,
    /// A NAMESPACE column first (`-A`).
    pub namespace_column: bool,
    /// Prefix names with `kind.group/` (several types in one `get`).
    pub kind_prefix: Option<String>,
    /// A LABELS column last (`--show-labels`).
    pub show_labels: bool,
}

/// The header and the rows of a `meta.k8s.io/v1` Table as tab-separated lines.
pub fn table_lines(table: &Value, opts: &TableOptions) -> (String, Vec<String>) {
    let columns: Vec<&Value> = table["columnDefinitions"].as_array().into_iter().flatten().collect();
    let shown: Vec<usize> = columns
        .iter()
        .enumerate()
        .filter(|(_, c)| opts.wide || c["priority"].as_i64().unwrap_or(0) == 0)
        .map(|(i, _)| i)
        .collect();
    let mut header: Vec<String> = Vec::new();
    if opts.namespace_column {
        header.push("NAMESPACE".into());
    }
    header.extend(
        shown
            .iter()
            .map(|&i| columns[i]["name"].as_str().unwrap_or_default().to_uppercase()),
    );
    if opts.show_labels {
        header.push("LABELS".into());
    }
    let rows = table["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|row| {
            let meta = &row["object"]["metadata"];
            let mut cells: Vec<String> = Vec::new();
            if opts.namespace_column {
                cells.push(meta["namespace"].as_str().unwrap_or_default().to_owned());
            }
            for &i in &shown {
                let mut cell = cell_text(&row["cells"][i]);
                if let Some(prefix) = &opts.kind_prefix
                    && columns[i]["format"] == "name"
                {
                    cell = format!("{prefix}/{cell}");
                }
                cells.push(cell);
            }
            if opts.show_labels {
                cells.push(labels_text(&meta["labels"]));
            }
            cells.join("\t")
        })
        .collect();
    (header.join("\t"), rows)
}

/// A cell as kubectl's table printer writes it.
pub fn cell_text(cell: &Value) -> String {
    match cell {
        Value::String(s) => s.replace(['\n', '\t'], " "),
        Value::Null => "<none>".into(),
        other => other.to_string(),
    }
}

/// `k=v,k2=v2`, sorted, or `<none>`.
pub fn labels_text(labels: &Value) -> String {
    match labels.as_object() {
        Some(map) if !map.is_empty() => map
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(","),
        _ => "<none>".into(),
    }
}

/// JSON as kubectl prints it: four-space indent and a final newline.
pub fn to_json(value: &Value) -> String {
    let mut buf = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, formatter);
    serde::Serialize::serialize(value, &mut ser).expect("a JSON value serializes");
    buf.push(b'\n');
    String::from_utf8(buf).expect("JSON is UTF-8")
}

/// YAML of an object (keys sorted, as kubectl's).
pub fn to_yaml(value: &Value) -> String {
    serde_saphyr::to_string(value).unwrap_or_else(|e| format!("# cannot print as YAML: {e}\n"))
}

/// The `List` kubectl prints for several objects.
pub fn list(items: Vec<Value>) -> Value {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": items,
        "metadata": {"resourceVersion": ""},
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tabwriter_matches_kubectl_get() {
        let text = "NAME\tREADY\tUP-TO-DATE\tAVAILABLE\tAGE\nrandom-generator\t3/3\t3\t3\t2s\n";
        assert_eq!(
            tabwrite(text, GET_LAYOUT, None),
            "NAME               READY   UP-TO-DATE   AVAILABLE   AGE\n\
             random-generator   3/3     3            3           2s\n"
        );
    }

    #[test]
    fn tabwriter_blocks_end_at_lines_without_the_column() {
        // From `kubectl describe pod`: `IPs:` has no tab, so `IP:` above and `  IP:` below
        // are sized separately; the trailing cell is never padded.
        let text = "Name:\tweb\nIP:\t10.0.0.1\nIPs:\n  IP:\t10.0.0.1\nControlled By:\tReplicaSet/x\n\
                    Conditions:\n  Type\tStatus\n  Ready \tTrue \n";
        assert_eq!(
            tabwrite(text, DESCRIBE_LAYOUT, None),
            "Name:  web\nIP:    10.0.0.1\nIPs:\n  IP:           10.0.0.1\nControlled By:  ReplicaSet/x\n\
             Conditions:\n  Type    Status\n  Ready   True \n"
        );
        // A line with more cells opens a nested block only for the lines that have them.
        assert_eq!(
            tabwrite("a\tb\tc\nlonger\td\n", DESCRIBE_LAYOUT, None),
            "a       b  c\nlonger  d\n"
        );
    }

    #[test]
    fn remembered_widths_never_shrink() {
        let mut widths = Vec::new();
        let first = tabwrite("NAME\tSTATUS\nlong-pod-name\tRunning\n", GET_LAYOUT, Some(&mut widths));
        let later = tabwrite("x\tPending\n", GET_LAYOUT, Some(&mut widths));
        assert_eq!(first, "NAME            STATUS\nlong-pod-name   Running\n");
        assert_eq!(later, "x               Pending\n");
    }

    fn pods_table() -> Value {
        json!({
            "kind": "Table",
            "columnDefinitions": [
                {"name": "Name", "type": "string", "format": "name", "priority": 0},
                {"name": "Ready", "type": "string", "format": "", "priority": 0},
                {"name": "Restarts", "type": "integer", "format": "", "priority": 0},
                {"name": "IP", "type": "string", "format": "", "priority": 1},
            ],
            "rows": [{"cells": ["web", "1/1", 0, "10.88.0.2"],
                      "object": {"metadata": {"namespace": "team", "labels": {"b": "2", "a": "1"}}}}],
        })
    }

    #[test]
    fn tables_show_wide_columns_namespaces_kinds_and_labels_on_request() {
        let table = pods_table();
        assert_eq!(
            table_lines(&table, &TableOptions::default()),
            ("NAME\tREADY\tRESTARTS".into(), vec!["web\t1/1\t0".into()])
        );
        let all = TableOptions {
            wide: true,
            namespace_column: true,
            kind_prefix: Some("pod".into()),
            show_labels: true,
        };
        assert_eq!(
            table_lines(&table, &all),
            (
                "NAMESPACE\tNAME\tREADY\tRESTARTS\tIP\tLABELS".into(),
                vec!["team\tpod/web\t1/1\t0\t10.88.0.2\ta=1,b=2".into()]
            )
        );
    }

    #[test]
    fn json_uses_four_spaces() {
        assert_eq!(to_json(&json!({"a": [1]})), "{\n    \"a\": [\n        1\n    ]\n}\n");
    }
}
