//! `$(VAR)` expansion, Kubernetes' own small syntax for env values, `command`, `args` and
//! `subPathExpr` (`third_party/forked/golang/expansion`). It is not a shell: `$VAR` and
//! `${VAR}` are left alone, `$$` is an escaped `$`, and a reference that cannot be resolved
//! stays in the output verbatim so a typo is visible instead of silently empty.

/// Expands `$(NAME)` references in `input` with `lookup`.
///
/// * `$(NAME)` becomes `lookup(NAME)`, or stays `$(NAME)` when the lookup has no value;
/// * `$$` becomes `$` (so `$$(NAME)` yields the literal `$(NAME)`);
/// * a `$` followed by anything else, an unclosed `$(` and a trailing `$` are copied as is.
pub fn expand(input: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let bytes = input.as_bytes();
    let mut out = String::with_capacity(input.len());
    let mut checkpoint = 0;
    let mut cursor = 0;
    while cursor < bytes.len() {
        if bytes[cursor] != b'$' || cursor + 1 >= bytes.len() {
            cursor += 1;
            continue;
        }
        out.push_str(&input[checkpoint..cursor]);
        match bytes[cursor + 1] {
            b'$' => {
                out.push('$');
                cursor += 2;
            }
            b'(' => match input[cursor + 2..].find(')') {
                Some(len) => {
                    let name = &input[cursor + 2..cursor + 2 + len];
                    match lookup(name) {
                        Some(value) => out.push_str(&value),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    cursor += 3 + len;
                }
                None => {
                    out.push_str("$(");
                    cursor += 2;
                }
            },
            _ => {
                out.push('$');
                cursor += 1;
            }
        }
        checkpoint = cursor;
    }
    out.push_str(&input[checkpoint..]);
    out
}

#[cfg(test)]
mod tests {
    use super::expand;

    #[test]
    fn expands_like_kubernetes() {
        let lookup = |name: &str| match name {
            "VAR_A" => Some("A".to_string()),
            "VAR_B" => Some("B".to_string()),
            "EMPTY" => Some(String::new()),
            "with space" => Some("ws".to_string()),
            _ => None,
        };
        let cases = [
            ("$(VAR_A)", "A"),
            ("___$(VAR_B)___", "___B___"),
            ("$(VAR_A)-$(VAR_B)", "A-B"),
            ("$(EMPTY)x", "x"),
            ("$(UNDEFINED)", "$(UNDEFINED)"),
            ("pre-$(UNDEFINED)-post", "pre-$(UNDEFINED)-post"),
            ("$$(VAR_A)", "$(VAR_A)"),
            ("$$$(VAR_A)", "$A"),
            ("$$$$(VAR_A)", "$$(VAR_A)"),
            ("$$", "$"),
            ("$$$", "$$"),
            ("$", "$"),
            ("x$", "x$"),
            ("$VAR_A", "$VAR_A"),
            ("${VAR_A}", "${VAR_A}"),
            ("$(VAR_A", "$(VAR_A"),
            ("$()", "$()"),
            ("$(with space)", "ws"),
            ("$(VAR_A)$(VAR_A)", "AA"),
            ("é$(VAR_A)é$é", "éAé$é"),
            ("", ""),
        ];
        for (input, output) in cases {
            assert_eq!(expand(input, lookup), output, "{input:?}");
        }
    }
}
