//! Kubernetes name rules (apimachinery's `util/validation`): DNS-1123 labels and subdomains,
//! qualified names, label values, config keys, environment variable names and port names.
//!
//! Each check returns the list of apimachinery's messages (empty when valid), word for word,
//! because users search for those exact sentences.

/// Longest DNS-1123 label.
pub const DNS1123_LABEL_MAX: usize = 63;
/// Longest DNS-1123 subdomain (and config key).
pub const DNS1123_SUBDOMAIN_MAX: usize = 253;
/// Longest name part of a qualified name, and longest label value.
pub const QUALIFIED_NAME_MAX: usize = 63;
/// Longest IANA service (port) name.
pub const PORT_NAME_MAX: usize = 15;

const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const QUALIFIED_NAME_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const CONFIG_KEY_MSG: &str = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";
/// The relaxed rule (KEP-4369, GA in 1.34): any printable ASCII except `=`.
pub const ENV_VAR_NAME_MSG: &str =
    "a valid environment variable name must consist only of printable ASCII characters other than '='";

/// apimachinery's `MaxLenError`.
pub fn max_len_error(max: usize) -> String {
    format!("must be no more than {max} characters")
}

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

fn label_shape(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && is_lower_alnum(b[0])
        && is_lower_alnum(b[b.len() - 1])
        && b.iter().all(|&c| is_lower_alnum(c) || c == b'-')
}

/// `[A-Za-z0-9]` at both ends, `[-A-Za-z0-9_.]` inside.
fn qualified_shape(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// A DNS-1123 label: container, volume and namespace names.
pub fn dns1123_label(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > DNS1123_LABEL_MAX {
        errs.push(max_len_error(DNS1123_LABEL_MAX));
    }
    if !label_shape(s) {
        errs.push(DNS1123_LABEL_MSG.to_string());
    }
    errs
}

/// A DNS-1123 subdomain: pod, ConfigMap and Secret names.
pub fn dns1123_subdomain(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > DNS1123_SUBDOMAIN_MAX {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX));
    }
    if !s.split('.').all(label_shape) {
        errs.push(DNS1123_SUBDOMAIN_MSG.to_string());
    }
    errs
}

/// A qualified name (`[prefix/]name`): label and annotation keys.
pub fn qualified_name(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = s.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else {
                errs.extend(
                    dns1123_subdomain(prefix)
                        .into_iter()
                        .map(|m| format!("prefix part {m}")),
                );
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a qualified name {QUALIFIED_NAME_MSG} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > QUALIFIED_NAME_MAX {
        errs.push(format!("name part {}", max_len_error(QUALIFIED_NAME_MAX)));
    }
    if !qualified_shape(name) {
        errs.push(format!("name part {QUALIFIED_NAME_MSG}"));
    }
    errs
}

/// A label value: empty, or a qualified-name-shaped string of at most 63 characters.
pub fn label_value(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > QUALIFIED_NAME_MAX {
        errs.push(max_len_error(QUALIFIED_NAME_MAX));
    }
    if !s.is_empty() && !qualified_shape(s) {
        errs.push(LABEL_VALUE_MSG.to_string());
    }
    errs
}

/// A ConfigMap or Secret key (`[-._a-zA-Z0-9]+`, at most 253, not `.`/`..`-prefixed), which
/// must also be usable as a file name in a volume.
pub fn config_key(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > DNS1123_SUBDOMAIN_MAX {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX));
    }
    let charset = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.');
    if s.is_empty() || !s.bytes().all(charset) {
        errs.push(CONFIG_KEY_MSG.to_string());
    }
    if s == "." {
        errs.push("must not be '.'".to_string());
    } else if s == ".." {
        errs.push("must not be '..'".to_string());
    } else if s.starts_with("..") {
        errs.push("must not start with '..'".to_string());
    }
    errs
}

/// An environment variable name under the relaxed rule.
pub fn env_var_name(s: &str) -> Vec<String> {
    if s.is_empty() {
        return vec!["environment variable name must be non-empty".to_string()];
    }
    if s.bytes().all(|b| (b' '..=b'~').contains(&b) && b != b'=') {
        Vec::new()
    } else {
        vec![ENV_VAR_NAME_MSG.to_string()]
    }
}

/// An IANA service name (`IANA_SVC_NAME`): container port names and named probe ports.
pub fn port_name(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > PORT_NAME_MAX {
        errs.push(max_len_error(PORT_NAME_MAX));
    }
    if s.is_empty() || !s.bytes().all(|c| is_lower_alnum(c) || c == b'-') {
        errs.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".to_string());
    }
    if !s.bytes().any(|c| c.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)".to_string());
    }
    if s.contains("--") {
        errs.push("must not contain consecutive hyphens".to_string());
    }
    if s.starts_with('-') || s.ends_with('-') {
        errs.push("must not begin or end with a hyphen".to_string());
    }
    errs
}

/// A port number (`1..=65535`).
pub fn port_number(port: i64) -> Vec<String> {
    if (1..=65535).contains(&port) {
        Vec::new()
    } else {
        vec!["must be between 1 and 65535, inclusive".to_string()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_each_rule() {
        type Check = fn(&str) -> Vec<String>;
        let long = "a".repeat(64);
        let cases: &[(&str, Check, &str, bool)] = &[
            ("label", dns1123_label, "web-1", true),
            ("label", dns1123_label, "Web", false),
            ("label", dns1123_label, "-web", false),
            ("label", dns1123_label, "a.b", false),
            ("label", dns1123_label, &long, false),
            ("subdomain", dns1123_subdomain, "my.app-1", true),
            ("subdomain", dns1123_subdomain, "my..app", false),
            ("subdomain", dns1123_subdomain, "", false),
            ("qualified", qualified_name, "app.kubernetes.io/name", true),
            ("qualified", qualified_name, "tier", true),
            ("qualified", qualified_name, "/tier", false),
            ("qualified", qualified_name, "a/b/c", false),
            ("qualified", qualified_name, "bad key", false),
            ("label value", label_value, "", true),
            ("label value", label_value, "v1.2_x", true),
            ("label value", label_value, "-v", false),
            ("config key", config_key, "application.properties", true),
            ("config key", config_key, "..data", false),
            ("config key", config_key, "a/b", false),
            ("env", env_var_name, "CONFIG_application.properties", true),
            ("env", env_var_name, "1ABC with space", true),
            ("env", env_var_name, "A=B", false),
            ("env", env_var_name, "ключ", false),
            ("env", env_var_name, "", false),
            ("port", port_name, "http", true),
            ("port", port_name, "http-alt2", true),
            ("port", port_name, "8080", false),
            ("port", port_name, "a--b", false),
            ("port", port_name, "very-long-port-name", false),
        ];
        for (rule, check, input, valid) in cases {
            assert_eq!(
                check(input).is_empty(),
                *valid,
                "{rule}: {input:?} -> {:?}",
                check(input)
            );
        }
    }

    #[test]
    fn messages_match_apimachinery() {
        assert_eq!(port_number(70000), ["must be between 1 and 65535, inclusive"]);
        assert_eq!(
            port_name("-80"),
            [
                "must contain at least one letter (a-z)",
                "must not begin or end with a hyphen"
            ]
        );
        assert!(dns1123_label("Main")[0].starts_with("a lowercase RFC 1123 label must consist"));
    }
}
