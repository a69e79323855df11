//! Go's `%q` string quoting, which Kubernetes uses in two user-visible places: the
//! `key="value"` lines of downward API label/annotation files and the `Invalid value: "x"`
//! part of validation messages. Matching it byte for byte keeps those outputs identical to
//! what a workload or a user sees on a real cluster.

/// Quotes `s` as Go's `strconv.Quote` does: double quotes, `\"` and `\\`, the C escapes
/// `\a \b \f \n \r \t \v`, `\xNN` for other ASCII controls, and `\uNNNN`/`\UNNNNNNNN` for
/// non-printable code points; printable Unicode is kept as is.
///
/// Go's notion of "printable" comes from Unicode categories that `std` does not expose; this
/// keeps every character except controls, non-space separators, format characters,
/// private-use code points and noncharacters, which covers what label and annotation values
/// contain in practice.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if is_go_printable(c) => out.push(c),
            c if (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// Approximates Go's `strconv.IsPrint`.
fn is_go_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    let cp = c as u32;
    let format_char = matches!(
        cp,
        0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x180E | 0x200B..=0x200F
            | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB
    );
    let private_use = matches!(cp, 0xE000..=0xF8FF | 0xF0000..=0x10FFFF);
    let noncharacter = (0xFDD0..=0xFDEF).contains(&cp) || cp & 0xFFFE == 0xFFFE;
    !(c.is_control() || c.is_whitespace() || format_char || private_use || noncharacter)
}

#[cfg(test)]
mod tests {
    use super::go_quote;

    #[test]
    fn quotes_like_go() {
        let cases = [
            ("", r#""""#),
            ("plain", r#""plain""#),
            (r#"a"b"#, r#""a\"b""#),
            (r"back\slash", r#""back\\slash""#),
            ("line1\nline2\t", r#""line1\nline2\t""#),
            ("bell\u{7}", r#""bell\a""#),
            ("nul\u{0}", r#""nul\x00""#),
            ("del\u{7f}", r#""del\x7f""#),
            ("日本語 ok", r#""日本語 ok""#),
            ("nbsp\u{a0}", r#""nbsp\u00a0""#),
            ("zw\u{200b}", r#""zw\u200b""#),
            ("emoji 🚀", r#""emoji 🚀""#),
        ];
        for (input, quoted) in cases {
            assert_eq!(go_quote(input), quoted, "{input:?}");
        }
    }
}
